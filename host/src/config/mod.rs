//! Configuration: the TOML file (`tapedeck.toml`), its defaults and
//! `TAPEDECK_*` environment overrides.
