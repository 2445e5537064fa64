//! Multipart bodies written byte for byte (filenames raw UTF-8, as the corpus asks), so
//! tests control exactly what Gatehouse parses, malformed forms included.

pub const BOUNDARY: &str = "XtestBOUNDARYx7MA4YWxkTrZu0gW";

pub struct Form {
    body: Vec<u8>,
}

impl Form {
    pub fn new() -> Form {
        Form { body: Vec::new() }
    }

    pub fn text(mut self, name: &str, value: &str) -> Form {
        self.body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
        self
    }

    pub fn file(mut self, name: &str, filename: &str, content_type: &str, data: &[u8]) -> Form {
        self.body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Raw bytes appended as they are (for malformed forms).
    pub fn raw(mut self, bytes: &[u8]) -> Form {
        self.body.extend_from_slice(bytes);
        self
    }

    /// The body with its closing boundary.
    pub fn finish(mut self) -> Vec<u8> {
        self.body
            .extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.body
    }

    /// The body without a closing boundary.
    pub fn unfinished(self) -> Vec<u8> {
        self.body
    }
}

pub fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}
