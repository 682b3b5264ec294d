// Empty: this crate only pins rdkafka-sys's vendored librdkafka sources (Cargo.toml).
