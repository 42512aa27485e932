package pipeline

// WatermarkKey exposes watermarkKey to the external tests, which read the
// watermark a run committed straight from the state store.
var WatermarkKey = watermarkKey
