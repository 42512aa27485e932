package blobio

// S3PartSize is the part size of S3 uploads, for the tests.
const S3PartSize = s3PartSize
