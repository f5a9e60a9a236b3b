//! Helpers for end-to-end tests that drive the real `cleanmail` binary.
