use crate::skeleton::PLACEHOLDER;
use crate::*;

#[test]
fn names_follow_the_provider_info_rule() {
    for good in ["s3", "my-store", "pg2", "a"] {
        assert!(validate_name(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "S3",
        "2fast",
        "my_store",
        "end-",
        "a--b",
        "-a",
        &"a".repeat(65),
    ] {
        let err = validate_name(bad).expect_err(bad).to_string();
        assert!(err.contains("invalid provider name"), "{bad}: {err}");
    }
}

#[test]
fn every_language_writes_its_project_with_the_name_filled_in() {
    for lang in Language::ALL {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("proj");
        let created = new_provider(&dir, "acme-store", lang).unwrap();
        assert!(created.files.len() > 2, "{lang}: {:?}", created.files);
        assert!(
            created.files.iter().any(|f| f.starts_with("wit")),
            "{lang}: the contract is copied"
        );
        let mut named = false;
        for file in &created.files {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            if !file.starts_with("vendor") && !file.starts_with("wit") {
                assert!(
                    !text.contains(PLACEHOLDER),
                    "{lang}: {} keeps the placeholder",
                    file.display()
                );
            }
            named |= text.contains("acme-store");
        }
        assert!(named, "{lang}: the name appears somewhere");
        // Never over an existing project.
        let again = new_provider(&dir, "acme-store", lang).unwrap_err();
        assert!(
            matches!(again, ScaffoldError::NotEmpty(_)),
            "{lang}: {again}"
        );
    }
}

#[test]
fn a_module_that_is_not_wasm_is_refused_with_a_reason() {
    let err = componentize(b"not wasm").unwrap_err().to_string();
    assert!(err.contains("not a WASI preview 1 core module"), "{err}");
}
