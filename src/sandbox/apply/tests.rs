//! Apply's decisions, from observations built by hand: no git, no binary.

use std::path::Path;

use super::decide::{Rebuild, database, env, links, setup};
use super::{Action, ApplyError, EnvReason};
use crate::db::migrations::{Applied, Format};
use crate::sandbox::lock::{EnvLock, Hook, Link, LinkKind, LinkMode};
use crate::sandbox::observe::{DatabaseSeen, EnvFound, EnvSeen, Found, Spot};
use crate::sandbox::state;

const ROOT: &str = "/w/wt";
const MAIN: &str = "/w/app";

fn link(path: &str, kind: LinkKind, mode: LinkMode) -> Link {
    Link::to_main(path, kind, mode)
}

fn spot(found: Found) -> Spot {
    Spot {
        found,
        blocker: None,
    }
}

fn links_for(
    wanted: &[(&Link, Spot)],
    dropped: &[(&Link, Spot)],
    copies: &[&str],
) -> Result<Vec<String>, ApplyError> {
    let actions = links(wanted, dropped, copies, Path::new(ROOT), Path::new(MAIN))?;
    Ok(actions.iter().map(ToString::to_string).collect())
}

#[test]
fn links_are_made_where_missing_or_wrong_and_data_is_never_replaced() {
    let env = link(".env", LinkKind::File, LinkMode::Symlink);
    let retargeted = Found::Symlink {
        target: "../elsewhere".into(),
        kind: LinkKind::File,
    };
    assert_eq!(
        links_for(&[(&env, spot(retargeted))], &[], &[]).unwrap(),
        ["link      .env -> ../app/.env"]
    );
    let in_place = Found::Symlink {
        target: "{main}/.env".into(),
        kind: LinkKind::File,
    };
    assert!(
        links_for(&[(&env, spot(in_place))], &[], &[])
            .unwrap()
            .is_empty()
    );
    let real = || spot(Found::Real(LinkKind::Dir));
    assert!(matches!(
        links_for(&[(&env, real())], &[], &[]),
        Err(ApplyError::Occupied { what: "folder", .. })
    ));
    assert!(matches!(
        links_for(&[(&env, real())], &[], &[".env"]),
        Err(ApplyError::OwnCopy { .. })
    ));
    let copy = link("node_modules", LinkKind::Dir, LinkMode::Copy);
    assert!(
        links_for(&[(&copy, real())], &[], &["node_modules"])
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        links_for(&[(&copy, real())], &[], &[]),
        Err(ApplyError::CopyKind { .. })
    ));
}

#[test]
fn an_old_folder_link_goes_first_and_frees_the_paths_inside_it() {
    let old = link("config", LinkKind::Dir, LinkMode::Symlink);
    let new = link("config/app.env", LinkKind::File, LinkMode::Symlink);
    let made = Found::Symlink {
        target: "{main}/config".into(),
        kind: LinkKind::Dir,
    };
    let through_old = || Spot {
        found: Found::Nothing,
        blocker: Some(("config".into(), "symlink")),
    };
    assert_eq!(
        links_for(&[(&new, through_old())], &[(&old, spot(made))], &[]).unwrap(),
        [
            "unlink    config",
            "link      config/app.env -> ../../app/config/app.env"
        ]
    );
    // A symlink someone else put there is neither removed nor written through.
    let theirs = Found::Symlink {
        target: "/secrets".into(),
        kind: LinkKind::Dir,
    };
    assert!(matches!(
        links_for(&[(&new, through_old())], &[(&old, spot(theirs))], &[]),
        Err(ApplyError::Blocked { .. })
    ));
}

#[test]
fn an_env_file_is_rewritten_only_where_provision_wrote_it() {
    let want = EnvLock {
        file: ".env.local".into(),
        shared: None,
        overrides: Default::default(),
        content: "blake3:want".into(),
    };
    let decide = |file: EnvFound| {
        let seen = EnvSeen { file, shared: None };
        env(&want, &seen, None, &[])
    };
    let text = |ours| EnvFound::Text {
        hash: "blake3:other".into(),
        ours,
        values: Default::default(),
    };
    let reason = |action: Option<Action>| match action {
        Some(Action::WriteEnv { reason, .. }) => Some(reason),
        _ => None,
    };
    assert_eq!(
        reason(decide(text(true)).unwrap()),
        Some(EnvReason::OutOfDate)
    );
    assert_eq!(
        reason(decide(EnvFound::Symlink).unwrap()),
        Some(EnvReason::ReplacesSymlink)
    );
    assert_eq!(
        reason(decide(EnvFound::Nothing).unwrap()),
        Some(EnvReason::New)
    );
    assert!(matches!(
        decide(text(false)),
        Err(ApplyError::ForeignEnvFile { .. })
    ));
    assert!(matches!(
        decide(EnvFound::Unreadable),
        Err(ApplyError::ForeignEnvFile { .. })
    ));
}

fn database_for(seen: DatabaseSeen) -> Result<Vec<String>, String> {
    rebuilt(seen, false, Rebuild::Leave)
}

/// The actions, or where a database left as it is diverged.
fn rebuilt(seen: DatabaseSeen, reset: bool, rebuild: Rebuild) -> Result<Vec<String>, String> {
    let applied = |name: &str| Applied {
        name: name.into(),
        checksum: format!("c{name}"),
    };
    let wanted = [applied("1.sql"), applied("2.sql")];
    let files: Vec<_> = wanted
        .iter()
        .map(|a| crate::db::migrations::Migration {
            checksum: a.checksum.clone(),
            ..crate::db::migrations::Migration::flat(&a.name, a.name.clone().into(), "")
        })
        .collect();
    let state = state::database(Format::Flat, &wanted, &files, &wanted, &seen);
    let all = ["1.sql".to_string(), "2.sql".to_string()];
    let decided = database(&state, "app_a", "sqlite:app_a".into(), &all, reset, rebuild)
        .map_err(|e| e.to_string())?;
    if decided.left {
        assert!(decided.actions.is_empty());
        return Err(state::divergence_words(&decided.diverged));
    }
    Ok(decided.actions.iter().map(ToString::to_string).collect())
}

fn ours(rows: &[(&str, Option<&'static str>)]) -> DatabaseSeen {
    DatabaseSeen {
        exists: true,
        marked: true,
        rows: rows
            .iter()
            .map(|(name, missing_from)| crate::db::LedgerRow {
                name: name.to_string(),
                checksum: Some(format!("c{name}")),
                missing_from: *missing_from,
            })
            .collect(),
    }
}

#[test]
fn the_database_is_created_repaired_and_migrated_in_order() {
    assert_eq!(
        database_for(DatabaseSeen::default()).unwrap(),
        [
            "create    database app_a at sqlite:app_a",
            "migrate   1.sql, 2.sql"
        ]
    );
    assert_eq!(
        database_for(ours(&[("1.sql", Some("d1_migrations"))])).unwrap(),
        ["repair    ledger rows 1.sql", "migrate   2.sql"]
    );
    assert!(
        database_for(ours(&[("1.sql", None), ("2.sql", None)]))
            .unwrap()
            .is_empty()
    );
    let refused = |seen| database_for(seen).unwrap_err();
    assert_eq!(
        refused(ours(&[("2.sql", None)])),
        "1.sql is new but sorts before the applied 2.sql"
    );
    assert_eq!(
        refused(ours(&[("0.sql", None)])),
        "0.sql was applied but its file is gone"
    );
    let unmarked = DatabaseSeen {
        exists: true,
        ..DatabaseSeen::default()
    };
    assert!(refused(unmarked).starts_with("database `app_a` at sqlite:app_a exists but"));
}

#[test]
fn a_rebuild_sets_aside_or_drops_then_builds_anew() {
    let anew = |first: &str| {
        vec![
            first.to_string(),
            "create    database app_a at sqlite:app_a".into(),
            "migrate   1.sql, 2.sql".into(),
        ]
    };
    let aside = Rebuild::SetAside("app_a_aside_1");
    let set_aside =
        "set aside database app_a as app_a_aside_1 (kept until the next `provision gc`)";
    // Diverged, with `on_divergence = "rebuild"`.
    assert_eq!(
        rebuilt(ours(&[("2.sql", None)]), false, aside).unwrap(),
        anew(set_aside)
    );
    // Not diverged: only a reset rebuilds it.
    let current = || ours(&[("1.sql", None), ("2.sql", None)]);
    assert!(rebuilt(current(), false, aside).unwrap().is_empty());
    assert_eq!(rebuilt(current(), true, aside).unwrap(), anew(set_aside));
    assert_eq!(
        rebuilt(current(), true, Rebuild::Discard).unwrap(),
        anew("drop      database app_a")
    );
    // A missing database is simply created.
    assert_eq!(
        rebuilt(DatabaseSeen::default(), true, aside).unwrap(),
        anew("create    database app_a at sqlite:app_a")[1..]
    );
}

#[test]
fn a_changed_repeatable_runs_again_after_the_versioned_ones() {
    let applied = |name: &str, checksum: &str| Applied {
        name: name.into(),
        checksum: checksum.into(),
    };
    let wanted = [
        applied("V1__a.sql", "c1"),
        applied("V2__b.sql", "c2"),
        applied("R__v.sql", "new"),
    ];
    let files: Vec<_> = wanted
        .iter()
        .map(|a| crate::db::migrations::Migration {
            checksum: a.checksum.clone(),
            ..crate::db::migrations::Migration::flat(&a.name, a.name.clone().into(), "")
        })
        .collect();
    let mut seen = ours(&[("V1__a.sql", None), ("R__v.sql", None)]);
    seen.rows[0].checksum = Some("c1".into());
    seen.rows[1].checksum = Some("old".into());
    let decide = |format| {
        let state = state::database(format, &wanted, &files, &wanted, &seen);
        database(
            &state,
            "app_a",
            "sqlite:app_a".into(),
            &[],
            false,
            Rebuild::Leave,
        )
        .unwrap()
    };
    let decided = decide(Format::Flyway);
    assert_eq!(
        decided.actions[0].to_string(),
        "migrate   V2__b.sql, R__v.sql"
    );
    // Anywhere else, a changed migration is a divergence.
    let decided = decide(Format::Flat);
    assert!(decided.left);
    assert_eq!(
        state::divergence_words(&decided.diverged),
        "R__v.sql was edited after it was applied"
    );
}

#[test]
fn setup_runs_from_the_first_command_not_done() {
    let hooks = |list: &[(&str, bool)]| -> Vec<Hook> {
        list.iter()
            .map(|(run, completed)| Hook {
                run: run.to_string(),
                completed: *completed,
            })
            .collect()
    };
    let wanted = hooks(&[("a", true), ("b", true)]);
    let actions = setup(&wanted, &hooks(&[("a", true), ("b", false)]));
    assert!(matches!(&actions[..], [Action::Setup { index: 1, .. }]));
    assert!(setup(&wanted, &wanted).is_empty());
}
