//! Image operations that need to know about containers: tag and remove.

use super::Engine;
use crate::error::{Error, Result};
use crate::image::reference;

/// One line of `DELETE /images/{name}`'s reply.
#[derive(Debug, serde::Serialize)]
pub enum Removal {
    Untagged(String),
    Deleted(String),
}

impl Engine {
    pub fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let image = self.images.resolve(source)?;
        if repo.is_empty() {
            return Err(Error::invalid("repository name must have at least one component"));
        }
        let target = reference::join(repo, tag)?;
        self.images.tag(&image.id, &target)?;
        self.events.image("tag", &image.id, &target);
        Ok(())
    }

    /// Removes a tag, and the image itself once no tag is left, with Docker's conflicts. The
    /// last tag of an image that a container uses goes only with `force`. An image that a
    /// container uses is never deleted: a forced removal by id drops its tags only.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<Removal>> {
        let image = self.images.resolve(name)?;
        let short_id = image.id[7..19].to_string();
        let tags = self.images.tags_of(&image.id);
        let users: Vec<(String, bool)> = self
            .all()
            .iter()
            .map(|c| c.snapshot())
            .filter(|r| r.image_id == image.id)
            .map(|r| (r.id[..12].to_string(), r.state.status.is_running()))
            .collect();
        let mut removed = Vec::new();
        let untag = |tag: String, removed: &mut Vec<Removal>| -> Result<()> {
            self.images.untag(&tag)?;
            self.events.image("untag", &image.id, &tag);
            removed.push(Removal::Untagged(tag));
            Ok(())
        };

        if let Some(tag) = reference::normalise(name).ok().filter(|n| tags.contains(n)) {
            if tags.len() > 1 || (!users.is_empty() && force) {
                untag(tag, &mut removed)?;
                return Ok(removed);
            }
            if let Some((user, _)) = users.first() {
                return Err(Error::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {user} is using its referenced image {short_id}"
                )));
            }
        } else {
            if tags.len() > 1 && !force {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {short_id} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            if let Some((user, _)) = users.iter().find(|(_, running)| *running) {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {short_id} (cannot be forced) - image is being used by running container {user}"
                )));
            }
            if let Some((user, _)) = users.first() {
                if !force {
                    return Err(Error::conflict(format!(
                        "conflict: unable to delete {short_id} (must be forced) - image is being used by stopped container {user}"
                    )));
                }
                for tag in tags {
                    untag(tag, &mut removed)?;
                }
                return Ok(removed);
            }
        }
        for tag in tags {
            removed.push(Removal::Untagged(tag));
        }
        self.images.delete(&image)?;
        self.events.image("delete", &image.id, name);
        removed.push(Removal::Deleted(image.id.clone()));
        Ok(removed)
    }
}
