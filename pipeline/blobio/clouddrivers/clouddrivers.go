// Package clouddrivers registers the cloud blob drivers with gocloud's
// default URL mux, so that every bulkflow location (sources, sinks, dead
// letters, reports, state) also accepts s3://, gs:// and azblob:// URLs.
//
// The engine (package pipeline and package blobio) imports none of them, as
// in gocloud: the application chooses which drivers it links. cmd/bulkflow
// and the blob test helpers (blobio/blobtest) import this package for its
// side effect:
//
//	import _ "github.com/bulkflow/bulkflow/pipeline/blobio/clouddrivers"
//
// Without it, only local paths, file:// and mem:// locations open; any other
// scheme fails with an error naming the registered schemes and this package.
//
// Each driver uses its standard credential chain and URL parameters:
//
//   - s3://bucket/key — AWS SDK v2 default chain (AWS_ACCESS_KEY_ID /
//     AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, web identity, IMDS); URL
//     parameters region, endpoint, use_path_style, disable_https, profile,
//     anonymous, ... (any unknown parameter is an error).
//   - gs://bucket/key — Google Application Default Credentials; with
//     STORAGE_EMULATOR_HOST=host:port (no scheme) an emulator without
//     credentials. URL parameter: access_id, private_key_path, anonymous.
//   - azblob://container/key — AZURE_STORAGE_ACCOUNT plus AZURE_STORAGE_KEY,
//     AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_CONNECTION_STRING, or the Azure
//     default credential chain; URL parameters domain, protocol, cdn,
//     localemu, storage_account.
//
// Buckets and containers must already exist: gocloud never creates them.
package clouddrivers

import (
	_ "gocloud.dev/blob/azureblob" // azblob:// URLs
	_ "gocloud.dev/blob/gcsblob"   // gs:// URLs
	_ "gocloud.dev/blob/s3blob"    // s3:// URLs
)
