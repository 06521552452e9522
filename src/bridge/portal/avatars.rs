//! Ghost avatars from QQ face images: fetched once per ghost and process through the account's
//! session, in the background with a concurrency cap, uploaded once per content (the store's
//! `media` table, by hash) and set only when the face changed (`ghosts.avatar_hash`).

use std::sync::{Arc, Mutex, PoisonError};

use actix::Addr;
use md5::{Digest as _, Md5};

use crate::account::manager::{AccountManager, FetchFace};
use crate::bridge::ids::GhostIds;
use crate::matrix::client::MatrixClient;
use crate::store::{Media, Store};
use crate::webqq::QqNumber;

use super::cache::{Bounded, CACHE_ENTRIES, Caches, GhostProfile};
use super::ghosts::ghost_row;
use super::image_type;

/// Face fetches and uploads in flight at once, over every account.
const AVATAR_CONCURRENCY: usize = 4;
/// Largest face image accepted (QQ faces are small thumbnails).
const MAX_FACE_BYTES: usize = 1024 * 1024;

/// Checks ghosts' avatars in the background.
pub(super) struct Avatars {
    inner: Arc<Inner>,
}

struct Inner {
    matrix: MatrixClient,
    store: Store,
    accounts: Addr<AccountManager>,
    ghosts: GhostIds,
    caches: Arc<Caches>,
    permits: Arc<tokio::sync::Semaphore>,
    /// Ghosts whose face was looked at in this process.
    checked: Mutex<Bounded<QqNumber, ()>>,
}

/// How one check ended.
#[derive(Debug, PartialEq, Eq)]
enum Checked {
    /// The face is the one already set.
    Unchanged,
    /// The avatar was set (`true`: uploaded now, `false`: the content was uploaded before).
    Set { uploaded: bool },
}

impl Avatars {
    /// A checker sending through `matrix` and fetching through `accounts`.
    pub(super) fn new(
        matrix: MatrixClient,
        store: Store,
        accounts: Addr<AccountManager>,
        ghosts: GhostIds,
        caches: Arc<Caches>,
    ) -> Self {
        let inner = Inner {
            matrix,
            store,
            accounts,
            ghosts,
            caches,
            permits: Arc::new(tokio::sync::Semaphore::new(AVATAR_CONCURRENCY)),
            checked: Mutex::new(Bounded::new(CACHE_ENTRIES)),
        };
        Avatars { inner: Arc::new(inner) }
    }

    /// Looks at `qq`'s face through `account` once per process, in the background; a ghost seen
    /// again is not fetched again.
    pub(super) fn check(&self, account: &str, qq: QqNumber) {
        {
            let mut checked = self.inner.checked.lock().unwrap_or_else(PoisonError::into_inner);
            if checked.get(&qq).is_some() {
                return;
            }
            checked.insert(qq, ());
        }
        let inner = self.inner.clone();
        let account = account.to_owned();
        tokio::spawn(async move {
            let Ok(_permit) = inner.permits.clone().acquire_owned().await else { return };
            match inner.refresh(&account, qq).await {
                Ok(outcome) => tracing::debug!(%account, %qq, ?outcome, "ghost avatar checked"),
                Err(error) => tracing::info!(%account, %qq, %error, "ghost avatar not set"),
            }
        });
    }
}

impl Inner {
    async fn refresh(&self, account: &str, qq: QqNumber) -> Result<Checked, String> {
        let fetch = FetchFace { account: account.to_owned(), qq };
        let bytes = self.accounts.send(fetch).await.map_err(|e| e.to_string())??;
        if bytes.len() > MAX_FACE_BYTES {
            return Err(format!("the face is larger than {MAX_FACE_BYTES} bytes"));
        }
        let (mimetype, extension) =
            image_type(&bytes).ok_or_else(|| "the face is not an image".to_owned())?;
        let hash = content_hash(&bytes);
        let ghost = self.ghosts.user_id(qq).ok_or_else(|| format!("no user id for {qq}"))?;
        let stored = || {
            let row = self.store.ghost(qq).ok().flatten().filter(|g| g.registered)?;
            Some(GhostProfile {
                displayname: row.displayname,
                avatar_hash: row.avatar_hash,
                avatar_url: row.avatar_url,
            })
        };
        let Some(profile) = self.caches.ghost(qq).or_else(stored) else {
            return Err("the ghost is not registered".to_owned());
        };
        if profile.avatar_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Checked::Unchanged);
        }
        let stored = self.store.media(&hash).map_err(|e| e.to_string())?;
        let uploaded = stored.is_none();
        let mxc = match stored {
            Some(media) => media.mxc,
            None => {
                let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                let name = Some(format!("qq-face.{extension}"));
                let mxc = self
                    .matrix
                    .upload(Some(&ghost), bytes, mimetype, name)
                    .await
                    .map_err(|e| e.to_string())?;
                let media = Media {
                    content_hash: hash.clone(),
                    mxc: mxc.clone(),
                    content_type: Some(mimetype.to_owned()),
                    size,
                };
                self.store.put_media(&media).map_err(|e| e.to_string())?;
                mxc
            }
        };
        self.matrix.set_avatar_url(&ghost, mxc.clone()).await.map_err(|e| e.to_string())?;
        // Read again just before the write: a rename may have happened meanwhile.
        let mut latest = self.caches.ghost(qq).unwrap_or(profile);
        latest.avatar_hash = Some(hash);
        latest.avatar_url = Some(mxc);
        self.store.upsert_ghost(&ghost_row(qq, &latest)).map_err(|e| e.to_string())?;
        self.caches.set_ghost(qq, latest);
        Ok(Checked::Set { uploaded })
    }
}

/// The media key of some bytes: the algorithm is part of the key, so a later change of
/// algorithm never matches an old row.
fn content_hash(bytes: &[u8]) -> String {
    format!("md5:{}", hex::encode(Md5::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_content_hash_names_its_algorithm_and_tells_contents_apart() {
        let a = content_hash(b"face one");
        assert!(a.starts_with("md5:") && a.len() == 4 + 32, "{a}");
        assert_eq!(a, content_hash(b"face one"));
        assert_ne!(a, content_hash(b"face two"));
    }
}
