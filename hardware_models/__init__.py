"""Hardware models: devices (CPU, GPU, ideal), links, calibration profiles and the catalog."""
