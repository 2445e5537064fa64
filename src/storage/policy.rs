//! `gatehouse s3-policy`: the two AWS policies that make uploads "everyone reads, only
//! Gatehouse writes": a bucket policy granting public `s3:GetObject` on the upload prefix
//! only, and an IAM policy for Gatehouse's credentials allowing `s3:PutObject` (nothing
//! else) on that prefix.

use serde_json::json;

/// The bucket policy: anonymous read of `<prefix>*`, nothing else.
pub fn bucket_policy(bucket: &str, prefix: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicReadOfUploads",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/{prefix}*")
        }]
    })
}

/// The writer's IAM policy: put objects under the prefix, nothing more.
pub fn writer_policy(bucket: &str, prefix: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "GatehouseWritesUploads",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": format!("arn:aws:s3:::{bucket}/{prefix}*")
        }]
    })
}

/// Both policies with the AWS CLI commands that apply them.
pub fn render(bucket: &str, prefix: &str) -> String {
    let pretty =
        |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("JSON values serialise");
    format!(
        "# 1. Bucket policy: anyone may read {bucket}/{prefix}*, nobody may write through it.\n\
         #    The bucket's Block Public Access must allow public bucket policies:\n\
         #      aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration \\\n\
         #        BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=false,RestrictPublicBuckets=false\n\
         #    Save the JSON below as bucket-policy.json, then:\n\
         #      aws s3api put-bucket-policy --bucket {bucket} --policy file://bucket-policy.json\n\
         {}\n\n\
         # 2. IAM policy for the credentials Gatehouse runs with: s3:PutObject on the prefix only.\n\
         #    Save the JSON below as gatehouse-writer.json, then:\n\
         #      aws iam put-user-policy --user-name gatehouse --policy-name gatehouse-uploads \\\n\
         #        --policy-document file://gatehouse-writer.json\n\
         #    (or attach it to the instance/task role that runs Gatehouse)\n\
         {}\n",
        pretty(&bucket_policy(bucket, prefix)),
        pretty(&writer_policy(bucket, prefix)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_is_public_write_is_put_only_both_on_the_prefix() {
        let read = bucket_policy("shop-uploads", "products/");
        let statement = &read["Statement"][0];
        assert_eq!(statement["Principal"], "*");
        assert_eq!(statement["Action"], "s3:GetObject");
        assert_eq!(
            statement["Resource"],
            "arn:aws:s3:::shop-uploads/products/*"
        );
        let write = writer_policy("shop-uploads", "products/");
        assert_eq!(write["Statement"][0]["Action"], "s3:PutObject");
        assert_eq!(
            write["Statement"][0]["Resource"],
            "arn:aws:s3:::shop-uploads/products/*"
        );
        assert!(write["Statement"][0].get("Principal").is_none());
    }
}
