//! The S3 client the vault talks through: the process's one, made in
//! [`crate::clients`] on its AWS configuration.

use crate::clients::AwsClient;

pub type S3 = AwsClient<aws_sdk_s3::Client>;
