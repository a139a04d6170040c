//! The env step: the per-worktree env file with the expanded overrides,
//! starting from the main checkout's copy when that file is also linked.

use std::collections::BTreeMap;

use super::{Inputs, PlanError, overrides};
use crate::hash;
use crate::sandbox::envfile;
use crate::sandbox::lock::{self, EnvLock};

/// The env file must be a real file of the worktree: inside a linked folder
/// it would be the main checkout's.
pub(super) fn check_outside_links(inputs: &Inputs) -> Result<(), PlanError> {
    let env_file = inputs.settings.env_file.as_str();
    match inputs
        .resolved
        .present
        .iter()
        .find(|(p, is_dir)| *is_dir && env_file.starts_with(&format!("{p}/")))
    {
        Some((link, _)) => Err(PlanError::EnvInsideLink {
            file: env_file.to_string(),
            link: link.clone(),
        }),
        None => Ok(()),
    }
}

/// The env file's record and text; none in the main checkout when the file
/// is the one every worktree shares.
pub(super) fn env(
    inputs: &Inputs,
    values: &BTreeMap<&'static str, String>,
    notes: &mut Vec<String>,
) -> Result<(Option<EnvLock>, Option<String>), PlanError> {
    let env_file = inputs.settings.env_file.as_str();
    let is_shared = inputs.resolved.present.iter().any(|(p, _)| p == env_file);
    let overrides = overrides(inputs.settings, values)?;
    if inputs.is_main && is_shared {
        notes.push(format!(
            "{env_file}: in the main checkout this is the file every worktree shares; overrides are not written into it"
        ));
        return Ok((None, None));
    }
    let shared = if is_shared { inputs.shared_env } else { None };
    let text = envfile::render(shared, &overrides)?;
    let lock = EnvLock {
        file: env_file.to_string(),
        shared: shared.map(|s| hash::of(s.as_bytes())),
        overrides,
        content: lock::env_hash(text.as_bytes(), inputs.clone),
    };
    Ok((Some(lock), Some(text)))
}

/// Each linked dotenv file that sets a key the overrides set: an app that
/// loads that file (and not the env file) gets the main checkout's database
/// and port, and isolation is gone without a word.
pub(super) fn shadowed(
    inputs: &Inputs,
    values: &BTreeMap<&'static str, String>,
) -> Result<Vec<String>, PlanError> {
    let mut notes = Vec::new();
    if inputs.is_main {
        return Ok(notes);
    }
    let overrides = overrides(inputs.settings, values)?;
    let env_file = inputs.settings.env_file.as_str();
    for (path, keys) in inputs.linked_env_keys {
        if path == env_file || inputs.tracked_in_worktree.contains(path) {
            continue;
        }
        let shadowed: Vec<&str> = keys
            .iter()
            .filter(|k| overrides.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !shadowed.is_empty() {
            notes.push(format!(
                "{path} (linked from the main checkout) sets {}, which this worktree overrides in {env_file}: an app that loads only {path} uses the main checkout's values; make it load {env_file} too, or set `[env] file = \"{path}\"`",
                shadowed.join(", ")
            ));
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::case::Case;
    use crate::hash;
    use crate::sandbox::envfile;

    #[test]
    fn a_file_of_its_own_holds_the_expanded_overrides() {
        let case = Case::new().include(&[".env"], &[]);
        let plan = case.plan().unwrap();
        let env = plan.sandbox.env.unwrap();
        let overrides = BTreeMap::from([
            ("DB_NAME".to_string(), "app_feature".to_string()),
            ("PORT".to_string(), "20001".to_string()),
        ]);
        assert_eq!(env.file, ".env.local");
        assert_eq!(env.shared, None);
        assert_eq!(env.overrides, overrides);
        let text = plan.env_text.unwrap();
        assert_eq!(text, envfile::render(None, &overrides).unwrap());
        assert_eq!(env.content, hash::of(text.as_bytes()));
    }

    #[test]
    fn a_shared_file_is_copied_with_the_overrides() {
        let mut case = Case::new()
            .recipe("[env]\nfile = \".dev.vars\"\n[env.vars]\nDB_NAME = \"{db}\"\n")
            .include(&[".dev.vars"], &[]);
        case.shared_env = Some("API_KEY=k\nDB_NAME=main\n".into());
        let plan = case.plan().unwrap();
        let env = plan.sandbox.env.unwrap();
        assert_eq!(env.shared, Some(hash::of(b"API_KEY=k\nDB_NAME=main\n")));
        let text = plan.env_text.unwrap();
        assert!(text.contains("\nAPI_KEY=k\n"), "{text}");
        assert!(text.contains("# DB_NAME: overridden below\n"), "{text}");
        assert!(text.ends_with("DB_NAME=app_feature\n"), "{text}");
        assert_eq!(env.content, hash::of(text.as_bytes()));
    }

    #[test]
    fn the_shared_text_counts_only_when_the_file_is_linked() {
        let mut case = Case::new();
        case.shared_env = Some("API_KEY=k\n".into());
        let env = case.plan().unwrap().sandbox.env.unwrap();
        assert_eq!(env.shared, None);
    }

    #[test]
    fn the_main_checkout_leaves_a_shared_file_alone() {
        let mut case = Case::new().include(&[".env.local"], &[]).in_main();
        case.shared_env = Some("A=1\n".into());
        let plan = case.plan().unwrap();
        assert_eq!(plan.sandbox.env, None);
        assert_eq!(plan.env_text, None);
        assert_eq!(
            plan.notes,
            [
                ".env.local: in the main checkout this is the file every worktree shares; overrides are not written into it"
            ]
        );
        // A file no worktree shares is the main checkout's own.
        let plan = Case::new()
            .include(&[".env"], &[])
            .in_main()
            .plan()
            .unwrap();
        assert_eq!(plan.sandbox.env.unwrap().file, ".env.local");
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn an_env_file_inside_a_linked_folder_is_refused() {
        let recipe = "[env]\nfile = \"config/.env\"\n";
        for case in [
            Case::new().recipe(recipe).include(&["config/"], &[]),
            Case::new()
                .recipe(recipe)
                .include(&["config/"], &[])
                .in_main(),
        ] {
            assert_eq!(
                case.plan().err().unwrap().to_string(),
                "env.file `config/.env` lies inside `config`, which is linked from the main checkout: writing it would change the main checkout's copy; choose a path outside `config`"
            );
        }
        // A linked file, or a folder whose name only starts the same, is no container.
        for present in ["config", "conf/"] {
            let case = Case::new().recipe(recipe).include(&[present], &[]);
            assert!(case.plan().is_ok(), "{present}");
        }
    }

    #[test]
    fn a_linked_dotenv_file_setting_an_override_is_noted() {
        let mut case = Case::new().include(&[".env", ".npmrc"], &[]);
        case.linked_env_keys = BTreeMap::from([(
            ".env".to_string(),
            ["API_KEY", "DB_NAME", "PORT"].map(String::from).into(),
        )]);
        let notes = case.plan().unwrap().shadowed;
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(".env (linked from the main checkout) sets DB_NAME, PORT, which this worktree overrides in .env.local"),
            "{}",
            notes[0]
        );
        // Where the overrides go into that very file, nothing is shadowed.
        let mut case = case.recipe("[env]\nfile = \".env\"\n");
        case.shared_env = Some("DB_NAME=main\n".into());
        assert!(case.plan().unwrap().shadowed.is_empty());
    }
}
