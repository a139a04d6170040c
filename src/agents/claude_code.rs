//! Claude Code makes worktrees itself (`claude --worktree`, subagents with
//! worktree isolation) and hands their making to a `WorktreeCreate` hook,
//! their removal to a `WorktreeRemove` hook, when settings name them. This
//! reads those hooks' events and writes those settings entries.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ordered_json::Json;

/// The command the settings entries run.
pub const HOOK_COMMAND: &str = "provision hook claude-code";

/// Where `init --agent claude-code` writes, in the main checkout.
pub const SETTINGS_FILE: &str = ".claude/settings.json";

const EVENTS: [&str; 2] = ["WorktreeCreate", "WorktreeRemove"];

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("cannot read the hook's event from stdin")]
    Read(#[source] serde_json::Error),
    #[error("the hook's event is not a JSON object")]
    NotAnObject,
    #[error(
        "`hook_event_name` is {0:?}: `provision hook claude-code` handles WorktreeCreate and WorktreeRemove"
    )]
    UnknownEvent(String),
    #[error("the {event} event has no `{field}`")]
    Missing {
        event: &'static str,
        field: &'static str,
    },
}

/// One hook event, with the field names Claude Code has sent over time.
#[derive(Debug, PartialEq)]
pub enum Event {
    Create {
        name: String,
        /// Where Claude Code wants the worktree; else `[worktree] path`.
        path: Option<PathBuf>,
        /// The repository the hook fired in.
        cwd: Option<PathBuf>,
        base: Option<String>,
    },
    Remove {
        path: PathBuf,
        cwd: Option<PathBuf>,
    },
}

/// Reads one JSON object and stops there: Claude Code may keep stdin open,
/// and a hook that waits for its end hangs the agent.
pub fn read_event(reader: impl Read) -> Result<Event, HookError> {
    let mut values = serde_json::Deserializer::from_reader(reader).into_iter::<serde_json::Value>();
    let value = match values.next() {
        Some(value) => value.map_err(HookError::Read)?,
        None => return Err(HookError::NotAnObject),
    };
    event(&value)
}

fn event(value: &serde_json::Value) -> Result<Event, HookError> {
    let object = value.as_object().ok_or(HookError::NotAnObject)?;
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| object.get(*k).and_then(|v| v.as_str()))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let cwd = text(&["cwd"]).map(PathBuf::from);
    let path = text(&["worktree_path"]).map(PathBuf::from);
    match text(&["hook_event_name"]).as_deref() {
        Some("WorktreeCreate") => {
            let from_path = path
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            let name =
                text(&["name", "worktree_name"])
                    .or(from_path)
                    .ok_or(HookError::Missing {
                        event: "WorktreeCreate",
                        field: "name",
                    })?;
            Ok(Event::Create {
                name,
                path,
                cwd,
                base: text(&["base_commit", "base_ref"]),
            })
        }
        Some("WorktreeRemove") => Ok(Event::Remove {
            path: path.ok_or(HookError::Missing {
                event: "WorktreeRemove",
                field: "worktree_path",
            })?,
            cwd,
        }),
        other => Err(HookError::UnknownEvent(other.unwrap_or("missing").into())),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{SETTINGS_FILE}: {reason}; provision leaves it as it is")]
pub struct SettingsError {
    reason: String,
}

impl SettingsError {
    /// The settings file, or the folder it is in, is the symlink `link` to
    /// `target`: a file outside the checkout, perhaps shared by others.
    pub fn linked(link: &str, target: &Path) -> Self {
        SettingsError {
            reason: format!(
                "{link} is a symlink to {}, and provision writes nothing outside the checkout: add the WorktreeCreate and WorktreeRemove hooks running `{HOOK_COMMAND}` there yourself",
                target.display()
            ),
        }
    }
}

/// The settings with provision's hook entries merged in, and the events
/// whose entry was added (none when both were there already).
pub struct Merged {
    pub text: String,
    pub added: Vec<&'static str>,
}

/// Adds a `WorktreeCreate` and a `WorktreeRemove` entry running
/// [`HOOK_COMMAND`] to `existing`; everything else stays as it was, in its
/// order. A file that is not a JSON object, or whose `hooks` has another
/// shape than Claude Code's, is refused rather than rewritten.
pub fn merge_settings(existing: Option<&str>) -> Result<Merged, SettingsError> {
    let bad = |reason: String| SettingsError { reason };
    let mut root = match existing {
        Some(text) => {
            serde_json::from_str::<Json>(text).map_err(|e| bad(format!("not valid JSON ({e})")))?
        }
        None => Json::Object(Vec::new()),
    };
    if !matches!(root, Json::Object(_)) {
        return Err(bad("not a JSON object".into()));
    }
    if root.get_mut("hooks").is_none() {
        root.insert("hooks", Json::Object(Vec::new()));
    }
    let hooks = root.get_mut("hooks").expect("inserted above");
    if !matches!(hooks, Json::Object(_)) {
        return Err(bad("`hooks` is not an object".into()));
    }
    let mut added = Vec::new();
    for event in EVENTS {
        if hooks.get_mut(event).is_none() {
            hooks.insert(event, Json::Array(Vec::new()));
        }
        let Some(Json::Array(groups)) = hooks.get_mut(event) else {
            return Err(bad(format!("`hooks.{event}` is not a list")));
        };
        let ours = serde_json::json!({ "type": "command", "command": HOOK_COMMAND });
        let present = groups.iter().any(|group| {
            group.to_value()["hooks"]
                .as_array()
                .is_some_and(|list| list.iter().any(|h| h["command"] == HOOK_COMMAND))
        });
        if !present {
            groups.push(Json::from_value(serde_json::json!({ "hooks": [ours] })));
            added.push(event);
        }
    }
    let mut text = serde_json::to_string_pretty(&root).expect("JSON serializes");
    text.push('\n');
    Ok(Merged { text, added })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Event, HookError> {
        read_event(text.as_bytes())
    }

    #[test]
    fn events_accept_the_field_names_claude_code_has_sent() {
        let create = parse(
            r#"{"hook_event_name":"WorktreeCreate","worktree_name":"fix-1","cwd":"/repo","base_ref":"main"} trailing"#,
        )
        .unwrap();
        assert_eq!(
            create,
            Event::Create {
                name: "fix-1".into(),
                path: None,
                cwd: Some("/repo".into()),
                base: Some("main".into()),
            }
        );
        let from_path = parse(
            r#"{"hook_event_name":"WorktreeCreate","worktree_path":"/repo/.claude/worktrees/agent-a1","base_commit":"abc"}"#,
        )
        .unwrap();
        assert!(matches!(from_path, Event::Create { name, .. } if name == "agent-a1"));
        let remove = parse(r#"{"hook_event_name":"WorktreeRemove","worktree_path":"/w"}"#).unwrap();
        assert_eq!(
            remove,
            Event::Remove {
                path: "/w".into(),
                cwd: None
            }
        );
        assert!(matches!(
            parse(r#"{"hook_event_name":"Stop"}"#),
            Err(HookError::UnknownEvent(_))
        ));
        assert!(matches!(parse("[]"), Err(HookError::NotAnObject)));
        assert!(matches!(
            parse(r#"{"hook_event_name":"WorktreeRemove"}"#),
            Err(HookError::Missing { .. })
        ));
    }

    #[test]
    fn merging_keeps_what_is_there_and_adds_once() {
        let existing = r#"{
  "permissions": {"allow": ["Bash(npm test)"]},
  "hooks": {"WorktreeCreate": [{"hooks": [{"type": "command", "command": "echo hi"}]}]},
  "model": "x"
}"#;
        let merged = merge_settings(Some(existing)).unwrap();
        assert_eq!(merged.added, ["WorktreeCreate", "WorktreeRemove"]);
        let keys: Vec<_> = ["permissions", "hooks", "model"]
            .iter()
            .map(|k| merged.text.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(keys.is_sorted(), "order kept: {}", merged.text);
        assert!(merged.text.contains("echo hi"));
        let again = merge_settings(Some(&merged.text)).unwrap();
        assert!(again.added.is_empty());
        assert_eq!(again.text, merged.text);
        assert!(merge_settings(Some("[1]")).is_err());
        assert!(merge_settings(Some(r#"{"hooks": 3}"#)).is_err());
        assert!(merge_settings(Some("{")).is_err());
    }
}
