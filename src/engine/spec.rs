//! Docker's container configuration as clients send it to `POST /containers/create` and read
//! it back from inspect. Fields berth acts on are typed; every other field is kept in `extra`
//! and returned unchanged, so clients see what they sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Reads a JSON null as the type's zero value, as Go's decoder leaves a field untouched on
/// null. Clients such as bollard send `"Tty": null` for fields they leave unset.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads Docker's `StrSlice`: a list of strings, or one string taken as a one-element list.
pub fn string_or_list<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrSlice {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<StrSlice>::deserialize(deserializer)? {
        None => None,
        Some(StrSlice::One(text)) => Some(vec![text]),
        Some(StrSlice::Many(list)) => Some(list),
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub hostname: String,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub domainname: String,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub user: String,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub attach_stderr: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub tty: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub image: String,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "string_or_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub network_mode: String,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub auto_remove: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub memory: i64,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub nano_cpus: i64,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub readonly_rootfs: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub privileged: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The body of `POST /containers/create`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub host_config: Option<HostConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_read_as_zero_values() {
        let body = r#"{"Image":"busybox","Tty":null,"User":null,"Cmd":null,"HostConfig":{"AutoRemove":null,"Memory":null}}"#;
        let request: CreateRequest = serde_json::from_str(body).unwrap();
        assert!(!request.config.tty);
        assert_eq!(request.config.user, "");
        assert_eq!(request.config.cmd, None);
        let host = request.host_config.unwrap();
        assert!(!host.auto_remove);
        assert_eq!(host.memory, 0);
    }

    #[test]
    fn cmd_accepts_a_single_string() {
        let request: CreateRequest = serde_json::from_str(r#"{"Image":"x","Cmd":"echo hi","Entrypoint":["/bin/sh","-c"]}"#).unwrap();
        assert_eq!(request.config.cmd, Some(vec!["echo hi".to_string()]));
        assert_eq!(request.config.entrypoint, Some(vec!["/bin/sh".to_string(), "-c".to_string()]));
    }
}
