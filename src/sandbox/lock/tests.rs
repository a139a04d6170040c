use super::*;

fn sample() -> Sandbox {
    Sandbox {
        version: VERSION,
        worktree: "feature".into(),
        recipe: hash::of(b"r"),
        links: vec![Link {
            path: ".env".into(),
            target: "{main}/.env".into(),
            kind: LinkKind::File,
            mode: LinkMode::Symlink,
        }],
        env: Some(EnvLock {
            file: ".env.local".into(),
            shared: None,
            overrides: BTreeMap::from([("DB_NAME".into(), "app_feature".into())]),
            content: hash::of(b"c"),
        }),
        database: DatabaseLock {
            kind: DatabaseKind::Sqlite,
            name: "app_feature".into(),
            location: "$GIT_COMMON_DIR/provision/sqlite/app_feature.sqlite".into(),
            migrations: vec![],
            chain: hash::of(b""),
        },
        port: 20001,
        ports: NamedPorts::new(),
        setup: vec![],
    }
}

/// A lock written before `mode` and `setup` existed reads and hashes as
/// it did; a lock that uses them round-trips.
#[test]
fn new_fields_are_left_out_at_their_default() {
    let text = render(&sample());
    assert!(!text.contains("mode") && !text.contains("setup"), "{text}");
    let mut sandbox = sample();
    sandbox.links[0].mode = LinkMode::Reflink;
    sandbox.setup = vec![Hook {
        run: "npm ci".into(),
        completed: false,
    }];
    let text = render(&sandbox);
    assert!(text.contains("\"mode\": \"reflink\""), "{text}");
    let read = parse(&text).unwrap();
    assert!(read.hash_ok);
    assert_eq!(read.sandbox, sandbox);
}

/// The default single `PORT` is the `port` field alone; named ports
/// are kept all together, and a name that is not a variable is refused.
#[test]
fn named_ports_are_left_out_while_they_are_the_default() {
    let default = NamedPorts::from([("PORT".to_string(), 20001)]);
    assert!(stored_ports(&default).is_empty());
    assert_eq!(named_ports(20001, &NamedPorts::new()), default);
    let named = NamedPorts::from([("WEB".to_string(), 20001), ("API".to_string(), 20002)]);
    assert_eq!(stored_ports(&named), named);
    assert_eq!(named_ports(20001, &named), named);

    let mut sandbox = sample();
    assert!(!render(&sandbox).contains("\"ports\""));
    sandbox.ports = named;
    let text = render(&sandbox);
    assert!(text.contains("\"API\": 20002"), "{text}");
    assert_eq!(parse(&text).unwrap().sandbox, sandbox);
    let err = parse(&text.replace("\"API\"", "\"A-B\"")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "provision.lock is not a valid lock: ports: `A-B` is not a variable name"
    );
}

#[test]
fn render_then_parse_round_trips_with_valid_hash() {
    let text = render(&sample());
    let read = parse(&text).unwrap();
    assert!(read.hash_ok);
    assert_eq!(read.sandbox, sample());
    assert_eq!(read.recorded_hash, hash_of(&sample()));
}

#[test]
fn keys_are_sorted() {
    let text = render(&sample());
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  \""))
        .map(|l| l.trim())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn an_unknown_database_kind_names_the_file_and_the_field() {
    let text = render(&sample()).replace("\"sqlite\"", "\"oracle\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "provision.lock is not a valid lock: database.kind: unknown variant `oracle`"
        ),
        "{err}"
    );
}

#[test]
fn an_edit_breaks_the_hash() {
    let text = render(&sample()).replace("app_feature\"", "app_other\"");
    assert!(!parse(&text).unwrap().hash_ok);
}

#[test]
fn paths_and_names_read_back_are_checked() {
    for bad in [
        "../victim",
        "/etc/passwd",
        "a/../../b",
        ".git/config",
        "provision.lock",
        "",
    ] {
        let mut sandbox = sample();
        sandbox.links[0].path = bad.into();
        let text = render(&sandbox);
        let err = parse(&text).expect_err(bad);
        assert!(err.to_string().contains("links[0].path"), "{bad}: {err}");
    }
    let mut sandbox = sample();
    sandbox.env.as_mut().unwrap().file = "../.env".into();
    assert!(
        parse(&render(&sandbox))
            .unwrap_err()
            .to_string()
            .contains("env.file `../.env`")
    );
    let mut sandbox = sample();
    sandbox.database.name = "../../x".into();
    assert!(
        parse(&render(&sandbox))
            .unwrap_err()
            .to_string()
            .contains("database.name")
    );
    assert!(inside("config/dev/.env").is_ok() && inside("node_modules").is_ok());
}

/// The clone's tag is `{clone}` in the file and itself in memory; a name
/// with `{clone}` elsewhere than where a tag fits is still refused.
#[test]
fn the_clones_tag_is_written_symbolically() {
    let mut sandbox = sample();
    sandbox.database.name = "app_feature_0a1b2c3d".into();
    sandbox.database.location = "postgres:app_feature_0a1b2c3d".into();
    let env = sandbox.env.as_mut().unwrap();
    env.overrides
        .insert("URL".into(), "postgres:///app_feature_0a1b2c3d".into());
    let text = render(&symbolic(&sandbox, "0a1b2c3d"));
    assert!(!text.contains("0a1b2c3d"), "{text}");
    assert!(text.contains("\"name\": \"app_feature_{clone}\""), "{text}");
    let read = parse(&text).unwrap();
    assert!(read.hash_ok);
    assert_eq!(realised(read.sandbox, "0a1b2c3d"), sandbox);
    // Another clone's lock, byte for byte.
    let other = realised(parse(&text).unwrap().sandbox, "ffff0000");
    assert_eq!(other.database.name, "app_feature_ffff0000");
    assert_eq!(render(&symbolic(&other, "ffff0000")), text);

    let too_long = format!("app_{}", CLONE.repeat(8));
    for bad in [too_long.as_str(), "{Clone}", "{clone"] {
        let mut sandbox = sample();
        sandbox.database.name = bad.into();
        assert!(parse(&render(&sandbox)).is_err(), "{bad}");
    }
}

/// A literal `{clone}` (or any `{`) in an override value reads back as
/// itself; a value without `{` is written as before.
#[test]
fn a_literal_clone_in_a_value_is_not_filled_in() {
    let mut sandbox = sample();
    let env = sandbox.env.as_mut().unwrap();
    for (key, value) in [
        ("LITERAL", "{clone}"),
        ("MIXED", "{{clone}}_0a1b2c3d_{clone"),
        ("JSON", r#"{"db":"app_0a1b2c3d"}"#),
        ("PLAIN", "app_0a1b2c3d"),
    ] {
        env.overrides.insert(key.into(), value.into());
    }
    let written = symbolic(&sandbox, "0a1b2c3d");
    let values = &written.env.as_ref().unwrap().overrides;
    assert_eq!(values["LITERAL"], "{{clone}");
    assert_eq!(values["JSON"], r#"{{"db":"app_{clone}"}"#);
    assert_eq!(values["PLAIN"], "app_{clone}");
    let read = parse(&render(&written)).unwrap();
    assert_eq!(realised(read.sandbox, "0a1b2c3d"), sandbox);
}

/// An env file hashes alike in every clone, and as before where it holds
/// no tag.
#[test]
fn env_files_hash_without_the_clones_tag() {
    let one = env_hash(b"DB=app_0a1b2c3d\n", "0a1b2c3d");
    assert_eq!(one, env_hash(b"DB=app_ffff0000\n", "ffff0000"));
    assert_eq!(one, hash::of(b"DB=app_{clone}\n"));
    assert_eq!(env_hash(b"DB=app\n", "0a1b2c3d"), hash::of(b"DB=app\n"));
    assert_ne!(one, env_hash(b"DB=app_0a1b2c3d\n", "ffff0000"));
}
