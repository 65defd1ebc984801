use super::*;

const GITHUB: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
const AWS: &str = "AKIAIOSFODNN7EXAMPLE";

fn preset() -> Redactor {
    Redactor::new(Rules::preset(), [7; 32])
}

fn redact(r: &Redactor, s: &str) -> String {
    String::from_utf8(r.redact(s.as_bytes()).payload.into_owned()).unwrap()
}

#[test]
fn the_preset_replaces_keys_tokens_and_jwts_with_stable_placeholders() {
    let r = preset();
    let msg = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"deploy","arguments":{{"api_key":"hunter2-long-value","auth":"Bearer {JWT}","note":"token {GITHUB} here","region":"eu"}}}}}}"#
    );
    let out = redact(&r, &msg);
    for secret in ["hunter2-long-value", JWT, GITHUB] {
        assert!(!out.contains(secret), "{secret} left in {out}");
    }
    let key = r.placeholder("secret", b"hunter2-long-value");
    let jwt = r.placeholder("jwt", JWT.as_bytes());
    let gh = r.placeholder("github-token", GITHUB.as_bytes());
    assert_eq!(
        out,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"deploy","arguments":{{"api_key":"{key}","auth":"Bearer {jwt}","note":"token {gh} here","region":"eu"}}}}}}"#
        )
    );
    // The same secret, found by its member's name, by a pattern, in
    // another message or as plain text: the same placeholder.
    let again = redact(
        &r,
        &format!(r#"{{"result":{{"token":"{JWT}","x":"{GITHUB}"}}}}"#),
    );
    assert!(again.contains(&jwt) && again.contains(&gh), "{again}");
    let text = redact(&r, &format!("stderr: using {GITHUB}"));
    assert_eq!(text, format!("stderr: using {gh}"));
    // Another key, other placeholders.
    let other = Redactor::new(Rules::preset(), [8; 32]);
    assert_ne!(other.placeholder("jwt", JWT.as_bytes()), jwt);
    assert!(jwt.starts_with("[REDACTED:jwt:") && jwt.len() == "[REDACTED:jwt:]".len() + 16);
}

#[test]
fn only_the_redacted_strings_change() {
    let r = preset();
    let msg =
        "{ \"b\" : 1.50e2,\n  \"a\":[true ,null], \"password\" : \"x\\\"y\", \"z\":\"\\u00e9\" }";
    let out = redact(&r, msg);
    let ph = r.placeholder("secret", b"x\"y");
    assert_eq!(
        out,
        format!(
            "{{ \"b\" : 1.50e2,\n  \"a\":[true ,null], \"password\" : \"{ph}\", \"z\":\"\\u00e9\" }}"
        )
    );
    let clean = r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"hello"}],"_meta":{"progressToken":"abc"}}}"#;
    let got = r.redact(clean.as_bytes());
    assert!(matches!(got.payload, Cow::Borrowed(_)));
    assert_eq!(got.replaced, 0);
}

#[test]
fn objects_under_a_secret_key_and_pointers_are_redacted_whole() {
    let rules = Rules::preset()
        .pointer("/params/arguments/*/pin")
        .unwrap()
        .key("ssn")
        .unwrap();
    let r = Redactor::new(rules, [1; 32]);
    let out = redact(
        &r,
        r#"{"credentials":{"user":"ann","pass":["p1","p2"]},"params":{"arguments":{"card":{"pin":"1234"}}},"SSN":"078-05-1120","n":{"secret":7}}"#,
    );
    for s in ["ann", "p1", "p2", "1234", "078-05-1120"] {
        assert!(!out.contains(&format!("\"{s}\"")), "{s} in {out}");
    }
    // Numbers are left as they are.
    assert!(out.contains(r#""secret":7"#), "{out}");
}

#[test]
fn escaped_strings_are_decoded_before_patterns_run() {
    let r = preset();
    // `\u0041KIA…`: the raw bytes hide the key from a raw-text search.
    let msg = format!(r#"{{"text":"\u0041{}"}}"#, &AWS[1..]);
    let out = redact(&r, &msg);
    assert_eq!(
        out,
        format!(
            r#"{{"text":"{}"}}"#,
            r.placeholder("aws-access-key", AWS.as_bytes())
        )
    );
}

#[test]
fn pem_keys_bearer_and_url_passwords_in_text() {
    let r = preset();
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----";
    let msg = serde_json::json!({ "result": { "text": format!("key:\n{pem}\nend") } }).to_string();
    let out = redact(&r, &msg);
    assert!(!out.contains("MIIEow"), "{out}");
    assert!(out.contains("key:\\n[REDACTED:private-key:"), "{out}");
    let out = redact(
        &r,
        "curl -H 'Authorization: Bearer abcdefghijklmnop1234' postgres://app:s3cr3t@db/x",
    );
    assert!(
        !out.contains("abcdefghijklmnop1234") && !out.contains("s3cr3t"),
        "{out}"
    );
    assert!(out.contains("Bearer [REDACTED:bearer:"), "{out}");
    assert!(
        out.contains("postgres://app:[REDACTED:url-password:"),
        "{out}"
    );
}

#[test]
fn invalid_utf8_and_broken_json_are_scanned_as_bytes() {
    let r = preset();
    let mut payload = b"\xff\xfe {\"token\": ".to_vec();
    payload.extend_from_slice(GITHUB.as_bytes());
    let out = r.redact(&payload);
    assert_eq!(out.replaced, 1);
    assert!(
        !out.payload
            .windows(GITHUB.len())
            .any(|w| w == GITHUB.as_bytes())
    );
    assert!(
        out.payload
            .starts_with(b"\xff\xfe {\"token\": [REDACTED:github-token:")
    );
}

#[test]
fn scan_reports_what_redact_would_replace_without_showing_it() {
    let r = preset();
    let msg =
        format!(r#"{{"params":{{"arguments":{{"password":"correct horse","x":"{GITHUB}"}}}}}}"#);
    let found = r.scan(msg.as_bytes());
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].rule, "key password");
    assert_eq!(
        found[0].pointer.as_deref(),
        Some("/params/arguments/password")
    );
    assert_eq!(found[1].rule, "github-token");
    assert_eq!(found[1].pointer.as_deref(), Some("/params/arguments/x"));
    for f in &found {
        assert!(!f.preview.contains("horse") && !f.preview.contains(&GITHUB[4..]));
    }
    // What was redacted is not found again.
    let redacted = r.redact(msg.as_bytes()).payload.into_owned();
    assert_eq!(r.scan(&redacted), Vec::new());
    assert_eq!(
        r.scan(format!("log {AWS}").as_bytes())[0].rule,
        "aws-access-key"
    );
}

#[test]
fn no_rules_change_nothing() {
    let r = Redactor::new(Rules::empty(), [0; 32]);
    let msg = format!(r#"{{"password":"{GITHUB}"}}"#);
    assert_eq!(
        r.redact(msg.as_bytes()).payload,
        Cow::Borrowed(msg.as_bytes())
    );
    assert!(r.scan(msg.as_bytes()).is_empty());
}
