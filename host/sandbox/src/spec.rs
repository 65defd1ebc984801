//! Everything needed to run one provider: its component, configuration,
//! grants and limits.

use super::grants::Grants;
use super::limits::Limits;
use super::secrets::Secrets;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a provider's component comes from.
#[derive(Debug, Clone)]
pub enum ComponentSource {
    /// A `.wasm` component file.
    File(PathBuf),
    /// Component bytes (e.g. the embedded default provider), with a label
    /// used in messages.
    Bytes {
        /// Shown in errors and logs, e.g. `embedded fs provider`.
        label: String,
        /// The component.
        bytes: Arc<[u8]>,
    },
}

impl ComponentSource {
    /// How this source is named in messages.
    pub fn label(&self) -> String {
        match self {
            ComponentSource::File(p) => p.display().to_string(),
            ComponentSource::Bytes { label, .. } => label.clone(),
        }
    }
}

/// One provider, ready to start: what the operator configured. `Debug`
/// shows the configuration with its secrets replaced by `<secret>`.
#[derive(Clone)]
pub struct ProviderSpec {
    /// The provider's name in the configuration (used in logs and errors).
    pub name: String,
    /// Its component.
    pub component: ComponentSource,
    /// The `config` table, passed to the provider's `init` as JSON, secrets
    /// included.
    pub config: serde_json::Value,
    /// The values in `config` that came from a secret (an environment
    /// variable or a file): never logged, scrubbed from every error, and
    /// left out of [`ProviderSpec::shown_config`].
    pub secrets: Secrets,
    /// What it may access.
    pub grants: Grants,
    /// How much it may use.
    pub limits: Limits,
}

impl ProviderSpec {
    /// A spec with no grants, default limits and an empty config.
    pub fn new(name: impl Into<String>, component: ComponentSource) -> Self {
        ProviderSpec {
            name: name.into(),
            component,
            config: serde_json::Value::Object(Default::default()),
            secrets: Secrets::default(),
            grants: Grants::default(),
            limits: Limits::default(),
        }
    }

    /// Sets the `config` passed to `init`.
    pub fn with_config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    /// Marks `secrets` as secret values of the `config`.
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// The `config` with every secret value replaced by `<secret>`: what may
    /// be shown, logged or hashed.
    pub fn shown_config(&self) -> serde_json::Value {
        self.secrets.redact_json(&self.config)
    }

    /// Sets the grants.
    pub fn with_grants(mut self, grants: Grants) -> Self {
        self.grants = grants;
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

impl fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("name", &self.name)
            .field("component", &self.component)
            .field("config", &self.shown_config())
            .field("secrets", &self.secrets)
            .field("grants", &self.grants)
            .field("limits", &self.limits)
            .finish()
    }
}
