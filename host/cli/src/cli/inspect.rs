//! `tapedeck provider inspect FILE.wasm`: what a component imports and
//! exports, which world and WIT version it implements, and whether this
//! tapedeck accepts it. The component is compiled and type-checked
//! (`sandbox::load`), never instantiated: none of its code runs.
//! `embedded:fs` names the provider built into tapedeck (as in a
//! configuration's `component`); `./embedded:fs` would be a file.
//!
//! Exits 1 when the component would be refused (after describing it, when
//! it is a component at all).

use super::{Context, output};
use anyhow::anyhow;
use clap::Args;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tapedeck::config::EMBEDDED_PREFIX;
use tapedeck::embedded;
use tapedeck::sandbox::load::{self, EXPORT_INTERFACE, WIT_VERSION};
use tapedeck::sandbox::network::Scheme;
use tapedeck::sandbox::network::allow::parse_entry;
use tapedeck::sandbox::{ComponentError, DirGrant, DirMode, Grants, Sandbox};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// Arguments of `provider inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component (.wasm), or `embedded:fs` for the provider built into
    /// tapedeck.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// One import or export of the component.
#[derive(Debug, Clone, serde::Serialize)]
struct Item {
    /// The full name, e.g. `wasi:filesystem/types@0.2.6`.
    name: String,
    /// `namespace:package`, when the name is an interface name.
    package: Option<String>,
    /// The interface within the package.
    interface: Option<String>,
    /// The package version.
    version: Option<String>,
    /// `interface`, `function`, `type`, ...
    kind: &'static str,
    /// The functions of an exported interface.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    functions: Vec<String>,
}

/// The imports of one package version: what the sandbox gives for such a
/// package at all (`access`), and what the chosen grants give this
/// component (`granted`; `denied` when every use would be refused).
#[derive(Debug, Clone, serde::Serialize)]
struct ImportGroup {
    package: String,
    version: Option<String>,
    interfaces: Vec<String>,
    access: &'static str,
    granted: String,
    denied: bool,
}

/// What the sandbox gives a provider for an imported package.
fn access(package: &str) -> &'static str {
    match package {
        "tapedeck:storage" => "host log (capped per line and per call)",
        "wasi:filesystem" => "only the directories in grants.dirs",
        "wasi:sockets" => "only the tcp/udp destinations in grants.network",
        "wasi:http" => "only the http/https hosts in grants.network",
        "wasi:cli" => "no env, args or stdin; stdout/stderr go to the host log",
        "wasi:clocks" => "wall and monotonic clocks",
        "wasi:random" => "random bytes, capped per call (limits.max-random)",
        "wasi:io" => "streams and polling for the above",
        _ => "not provided by this tapedeck",
    }
}

/// Splits `ns:pkg/iface@1.2.3` into its parts.
fn split_name(name: &str) -> (Option<String>, Option<String>, Option<String>) {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(v.to_string())),
        None => (name, None),
    };
    match path.split_once('/') {
        Some((pkg, iface)) if pkg.contains(':') => {
            (Some(pkg.to_string()), Some(iface.to_string()), version)
        }
        _ if path.contains(':') => (Some(path.to_string()), None, version),
        _ => (None, None, version),
    }
}

fn kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "function",
        ComponentItem::CoreFunc(_) => "core function",
        ComponentItem::Module(_) => "core module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "interface",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    }
}

fn item(engine: &Engine, name: &str, ty: &ComponentItem, with_functions: bool) -> Item {
    let (package, interface, version) = split_name(name);
    let functions = match ty {
        ComponentItem::ComponentInstance(i) if with_functions => i
            .exports(engine)
            .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
            .map(|(n, _)| n.to_string())
            .collect(),
        _ => Vec::new(),
    };
    Item {
        name: name.to_string(),
        package,
        interface,
        version,
        kind: kind(ty),
        functions,
    }
}

/// What `grants` give a component importing `package`, and whether every use
/// would be denied.
fn granted(package: &str, grants: &Grants) -> (String, bool) {
    let network = |want_socket: bool| -> Vec<String> {
        grants
            .network
            .iter()
            .filter(|entry| {
                parse_entry(entry).is_ok_and(|rules| {
                    rules.iter().any(|r| {
                        if want_socket {
                            r.scheme.is_socket()
                        } else {
                            matches!(r.scheme, Scheme::Http | Scheme::Https | Scheme::Any)
                        }
                    })
                })
            })
            .cloned()
            .collect()
    };
    let listed = |v: Vec<String>, none: &str| -> (String, bool) {
        if v.is_empty() {
            (format!("DENIED: {none}"), true)
        } else {
            (v.join(", "), false)
        }
    };
    match package {
        "wasi:filesystem" => listed(
            grants
                .dirs
                .iter()
                .map(|d| {
                    let mode = match d.mode {
                        DirMode::ReadOnly => "ro",
                        DirMode::ReadWrite => "rw",
                    };
                    format!("{} ({mode})", d.guest)
                })
                .collect(),
            "no directory is granted",
        ),
        "wasi:sockets" => listed(network(true), "no tcp/udp destination is granted"),
        "wasi:http" => listed(network(false), "no http/https host is granted"),
        p if access(p) == "not provided by this tapedeck" => {
            ("NOT PROVIDED: the component cannot be loaded".into(), true)
        }
        _ => ("provided".into(), false),
    }
}

fn group_imports(imports: &[Item], grants: &Grants) -> Vec<ImportGroup> {
    let mut groups: BTreeMap<(String, Option<String>), Vec<String>> = BTreeMap::new();
    for i in imports {
        let package = i.package.clone().unwrap_or_else(|| i.name.clone());
        groups
            .entry((package, i.version.clone()))
            .or_default()
            .extend(i.interface.clone());
    }
    groups
        .into_iter()
        .map(|((package, version), mut interfaces)| {
            interfaces.sort();
            let (granted, denied) = granted(&package, grants);
            ImportGroup {
                granted,
                denied,
                access: access(&package),
                package,
                version,
                interfaces,
            }
        })
        .collect()
}

/// The component `name` names when it is `embedded:NAME`: its bytes, or
/// an error for a name that is not built in. `None` for anything else (a
/// path).
fn embedded_component(name: &std::path::Path) -> Option<anyhow::Result<&'static [u8]>> {
    let which = name.to_str()?.strip_prefix(EMBEDDED_PREFIX)?;
    Some(if which == embedded::DEFAULT_PROVIDER {
        Ok(embedded::FS_PROVIDER_WASM)
    } else {
        Err(anyhow!(
            "there is no embedded provider {which:?} (available: \"{EMBEDDED_PREFIX}{}\"; a file named like this would be ./{})",
            embedded::DEFAULT_PROVIDER,
            name.display()
        ))
    })
}

/// `tapedeck provider inspect`.
pub fn run(ctx: &mut Context, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let embedded = embedded_component(&args.file).transpose()?;
    // Compare with the grants of the provider chosen with --config /
    // --provider; without one, with what the embedded provider gets by
    // default (for itself), or, for any other file, with what `provider
    // test FILE` grants it (an author's build is checked that way first; a
    // warning that a correct build has no directory would only mislead).
    let (grants, grants_from) = if ctx.chose_provider() {
        let (spec, _) = ctx.provider_spec()?;
        let from = format!("provider `{}`", spec.name);
        (spec.grants, from)
    } else if embedded.is_some() {
        let spec = embedded::fs_provider_spec(embedded::DEFAULT_TAPES_DIR);
        let from = format!(
            "the embedded default (./{} read-write at {})",
            embedded::DEFAULT_TAPES_DIR,
            embedded::DEFAULT_GUEST_DIR
        );
        (spec.grants, from)
    } else {
        let grants = Grants {
            dirs: vec![DirGrant::read_write(
                std::path::Path::new("scratch"),
                embedded::DEFAULT_GUEST_DIR,
            )],
            ..Grants::default()
        };
        let from = format!(
            "`provider test` (a scratch directory, read-write at {}; \
             --config/--provider compare with a configured provider's)",
            embedded::DEFAULT_GUEST_DIR
        );
        (grants, from)
    };
    let what = args.file.display().to_string();
    let bytes = match embedded {
        Some(bytes) => bytes.to_vec(),
        None => std::fs::read(&args.file).map_err(|e| ComponentError::Io {
            path: what.clone(),
            detail: e.to_string(),
        })?,
    };
    // Not wasm, a core module, precompiled code: nothing more to say.
    load::check_header(&what, &bytes)?;
    let sandbox = Sandbox::new().map_err(|e| anyhow!("cannot create the sandbox: {e:#}"))?;
    let engine = sandbox.engine().engine();
    let loaded = sandbox.load(&what, &bytes);
    let component = match &loaded {
        Ok(l) => l.component.clone(),
        // Refused after compiling (wrong version, shape or imports): compile
        // it again to describe it. If it does not compile, that is the error.
        Err(e) => Component::new(engine, &bytes).map_err(|_| anyhow!(e.clone()))?,
    };
    let ty = component.component_type();
    let exports: Vec<Item> = ty
        .exports(engine)
        .map(|(n, e)| item(engine, n, &e.ty, true))
        .collect();
    let imports: Vec<Item> = ty
        .imports(engine)
        .map(|(n, e)| item(engine, n, &e.ty, false))
        .collect();
    let prefix = format!("{EXPORT_INTERFACE}@");
    let wit_version = exports
        .iter()
        .find_map(|e| e.name.strip_prefix(&prefix))
        .map(str::to_string);
    let report = Report {
        world: wit_version
            .as_ref()
            .map(|v| format!("tapedeck:storage/provider@{v}")),
        version_supported: wit_version.as_deref().is_some_and(load::version_compatible),
        wit_version,
        host_wit_version: WIT_VERSION,
        accepted: loaded.is_ok(),
        refused: loaded.as_ref().err().map(ToString::to_string),
        file: what,
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        import_packages: group_imports(&imports, &grants),
        grants_from,
        exports,
        imports,
    };
    if ctx.json {
        output::print_json(&report)?;
    } else {
        std::io::stdout()
            .lock()
            .write_all(report.render().as_bytes())?;
    }
    Ok(if report.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What `inspect` found (the `--json` object).
#[derive(Debug, serde::Serialize)]
struct Report {
    /// The file as given.
    file: String,
    /// Its size.
    bytes: u64,
    /// SHA-256 of its bytes (for `sha256 =` in the configuration).
    sha256: String,
    /// `tapedeck:storage/provider@X`, if it exports `tape-storage@X`.
    world: Option<String>,
    /// X.
    wit_version: Option<String>,
    /// The version this tapedeck speaks.
    host_wit_version: &'static str,
    /// X is compatible with `host_wit_version`.
    version_supported: bool,
    /// This tapedeck would load it.
    accepted: bool,
    /// Why not.
    refused: Option<String>,
    /// Everything it exports.
    exports: Vec<Item>,
    /// Everything it imports.
    imports: Vec<Item>,
    /// The imports by package and version, with what the grants give them.
    import_packages: Vec<ImportGroup>,
    /// Whose grants `import_packages` were compared with.
    grants_from: String,
}

impl Report {
    /// The human-readable report.
    fn render(&self) -> String {
        use output::{Align, Table};
        let what = &self.file;
        let sha256 = &self.sha256;
        let mut out = format!(
            "component  {what} ({}, sha256 {sha256})\n",
            output::size(self.bytes)
        );
        out += &format!(
            "world      {}\n",
            self.world
                .as_deref()
                .unwrap_or("none (it does not export tapedeck:storage/tape-storage)")
        );
        if let Some(v) = &self.wit_version {
            let verdict = if self.version_supported {
                format!("supported (this tapedeck speaks {WIT_VERSION})")
            } else {
                format!(
                    "version {v} is not supported: this tapedeck speaks tapedeck:storage@{WIT_VERSION}"
                )
            };
            out += &format!("wit        {v}, {verdict}\n");
        }
        match &self.refused {
            None => out += "verdict    accepted\n",
            Some(why) => out += &format!("verdict    refused: {why}\n"),
        }
        out += "\nexports\n";
        let mut table = Table::new(&[
            ("  NAME", Align::Left),
            ("KIND", Align::Left),
            ("FUNCTIONS", Align::Left),
        ]);
        for e in &self.exports {
            table.row(vec![
                format!("  {}", e.name),
                e.kind.to_string(),
                e.functions.join(", "),
            ]);
        }
        out += &or_none(&table, self.exports.is_empty());
        out += &format!("\nimports (declared) vs grants of {}\n", self.grants_from);
        let mut table = Table::new(&[
            ("  PACKAGE", Align::Left),
            ("VERSION", Align::Left),
            ("GRANTED", Align::Left),
            ("SANDBOX", Align::Left),
            ("INTERFACES", Align::Left),
        ]);
        for g in &self.import_packages {
            table.row(vec![
                format!("  {}", g.package),
                g.version.clone().unwrap_or_else(|| "-".into()),
                g.granted.clone(),
                g.access.to_string(),
                g.interfaces.join(", "),
            ]);
        }
        out += &or_none(&table, self.import_packages.is_empty());
        for g in self.import_packages.iter().filter(|g| g.denied) {
            out += &format!(
                "warning: it imports {} but {}: every use will be refused\n",
                g.package,
                g.granted
                    .trim_start_matches("DENIED: ")
                    .trim_start_matches("NOT PROVIDED: ")
            );
        }
        out
    }
}

/// The table, or `  none` when it has no rows.
fn or_none(table: &output::Table, empty: bool) -> String {
    if empty {
        "  none\n".to_string()
    } else {
        table.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            split_name("wasi:filesystem/types@0.2.6"),
            (
                Some("wasi:filesystem".into()),
                Some("types".into()),
                Some("0.2.6".into())
            )
        );
        assert_eq!(
            split_name("tapedeck:storage/tape-storage@1.0.0"),
            (
                Some("tapedeck:storage".into()),
                Some("tape-storage".into()),
                Some("1.0.0".into())
            )
        );
        assert_eq!(split_name("run"), (None, None, None));
        assert_eq!(
            split_name("a:b@1.0.0"),
            (Some("a:b".into()), None, Some("1.0.0".into()))
        );
    }

    #[test]
    fn imports_group_by_package_and_version() {
        let it = |name: &str| Item {
            name: name.into(),
            package: split_name(name).0,
            interface: split_name(name).1,
            version: split_name(name).2,
            kind: "interface",
            functions: vec![],
        };
        let groups = group_imports(
            &[
                it("wasi:filesystem/types@0.2.6"),
                it("tapedeck:storage/log@0.1.0"),
                it("wasi:filesystem/preopens@0.2.6"),
                it("tapedeck:storage/types@0.1.0"),
            ],
            &Grants::default(),
        );
        let got: Vec<(String, String)> = groups
            .iter()
            .map(|g| (g.package.clone(), g.interfaces.join(",")))
            .collect();
        assert_eq!(
            got,
            [
                ("tapedeck:storage".to_string(), "log,types".to_string()),
                ("wasi:filesystem".to_string(), "preopens,types".to_string())
            ]
        );
        assert!(groups[1].access.contains("grants.dirs"));
        assert!(groups[1].denied, "no directory granted");
        assert!(!groups[0].denied);
    }

    #[test]
    fn declared_imports_are_compared_with_the_grants() {
        use tapedeck::sandbox::DirGrant;
        let grants = Grants {
            dirs: vec![DirGrant::read_only("/srv/x", "/data")],
            network: vec!["tcp://127.0.0.1:5432".into()],
            ..Grants::default()
        };
        assert_eq!(
            granted("wasi:filesystem", &grants),
            ("/data (ro)".into(), false)
        );
        assert_eq!(
            granted("wasi:sockets", &grants),
            ("tcp://127.0.0.1:5432".into(), false)
        );
        let (http, denied) = granted("wasi:http", &grants);
        assert!(denied && http.starts_with("DENIED"), "{http}");
        let (other, denied) = granted("acme:magic", &grants);
        assert!(denied && other.contains("NOT PROVIDED"), "{other}");
        assert_eq!(granted("wasi:clocks", &grants), ("provided".into(), false));
    }
}
