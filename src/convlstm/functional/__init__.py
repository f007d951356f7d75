"""Pure kernels: arrays in, arrays out; no state, no validation."""
