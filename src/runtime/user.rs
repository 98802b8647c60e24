//! Resolves Docker's `User` field (`name`, `uid`, `name:group`, `uid:gid`) against the
//! container's own /etc/passwd and /etc/group.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resolves `spec` with the text of the container's passwd and group files (empty when the
/// image has none). A numeric uid that passwd does not list is used as is, with gid 0.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser> {
    if spec.is_empty() {
        return resolve("0", passwd, group);
    }
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd_entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| {
        f.len() >= 4 && (f[0] == user_part || (user_part.parse::<u32>().is_ok() && f[2] == user_part))
    });
    let (uid, mut gid, name) = match (&passwd_entry, user_part.parse::<u32>()) {
        (Some(f), _) => (parse_id(f[2], spec)?, parse_id(f[3], spec)?, Some(f[0].to_string())),
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => {
            return Err(Error::invalid(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(group_part) = group_part {
        gid = match group_part.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == group_part)
                .map(|f| parse_id(f[2], spec))
                .transpose()?
                .ok_or_else(|| {
                    Error::invalid(format!("unable to find group {group_part}: no matching entries in group file"))
                })?,
        };
    }
    // The primary group is a supplementary group too, as Docker sets it (libcontainer's
    // GetExecUser starts the list with it), so `id` shows it under groups.
    let mut additional_gids = vec![gid];
    if let Some(name) = name {
        for fields in group.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if fields.len() >= 4 && fields[3].split(',').any(|member| member == name) {
                if let Ok(extra) = fields[2].parse::<u32>() {
                    if extra != gid && !additional_gids.contains(&extra) {
                        additional_gids.push(extra);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser { uid, gid, additional_gids })
}

fn parse_id(text: &str, spec: &str) -> Result<u32> {
    text.parse().map_err(|_| Error::invalid(format!("invalid id {text:?} in passwd or group entry for user {spec}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nwww:x:33:33::/var/www:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nwww:x:33:\nlog:x:4:www\n";

    #[test]
    fn resolves_names_and_numbers() {
        assert_eq!(resolve("", PASSWD, GROUP).unwrap(), ResolvedUser { uid: 0, gid: 0, additional_gids: vec![0] });
        assert_eq!(resolve("nobody", PASSWD, GROUP).unwrap().uid, 65534);
        assert_eq!(resolve("www", PASSWD, GROUP).unwrap(), ResolvedUser { uid: 33, gid: 33, additional_gids: vec![33, 4] });
        assert_eq!(resolve("1000:1000", PASSWD, GROUP).unwrap(), ResolvedUser { uid: 1000, gid: 1000, additional_gids: vec![1000] });
        assert_eq!(resolve("33:nogroup", PASSWD, GROUP).unwrap().gid, 65534);
    }

    #[test]
    fn unknown_names_are_invalid() {
        let err = resolve("ghost", PASSWD, GROUP).unwrap_err();
        assert!(err.message.contains("unable to find user ghost"), "{}", err.message);
        assert!(resolve("www:nogroupx", PASSWD, GROUP).is_err());
    }
}
