//! The SQLite database file holds the signing keys and the client-secret pepper: it is created
//! readable and writable by its owner only, and refused when other users may read or write it
//! or its `-wal` and `-shm` files (SQLite creates those with the database file's mode).

use super::StoreError;

/// Mode bits a database file must not have: any access by group or others.
#[cfg(unix)]
const NOT_OWNER_ONLY: u32 = 0o077;

/// Creates the database file `path` with mode 0600 if it is missing, then checks that neither
/// it nor its `-wal` and `-shm` files (when present) can be read or written by group or others.
#[cfg(unix)]
pub(super) fn private_database_file(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(StoreError::Permissions(format!(
                "cannot create the database file {}: {e}",
                path.display()
            )));
        }
    }
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    let mut modes = Vec::new();
    for file in files {
        match std::fs::metadata(&file) {
            Ok(meta) => modes.push((file, meta.permissions().mode())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Permissions(format!(
                    "cannot read the permissions of {}: {e}",
                    file.display()
                )));
            }
        }
    }
    match permission_problem(&modes) {
        Some(message) => Err(StoreError::Permissions(message)),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
pub(super) fn private_database_file(_path: &std::path::Path) -> Result<(), StoreError> {
    Ok(())
}

/// Why database files with these modes are refused (they hold the signing keys), or `None`
/// when only their owner can read and write them.
#[cfg(unix)]
fn permission_problem(files: &[(std::path::PathBuf, u32)]) -> Option<String> {
    let open: Vec<_> = files
        .iter()
        .filter(|(_, mode)| mode & NOT_OWNER_ONLY != 0)
        .collect();
    if open.is_empty() {
        return None;
    }
    let listed: Vec<String> = open
        .iter()
        .map(|(file, mode)| format!("{} (mode {:04o})", file.display(), mode & 0o7777))
        .collect();
    let names: Vec<String> = open.iter().map(|(f, _)| f.display().to_string()).collect();
    Some(format!(
        "database file readable or writable by other users than its owner: {}; it holds the \
         signing keys, so the identity store is not opened: run `chmod 600 {}` (and consider \
         rotating the signing keys)",
        listed.join(", "),
        names.join(" ")
    ))
}

#[cfg(all(test, unix))]
mod permission_tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::permission_problem;
    use crate::store::{SqliteStore, Store, StoreError};

    fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        name.into()
    }

    fn mode(file: &Path) -> u32 {
        std::fs::metadata(file).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn a_new_database_and_its_wal_and_shm_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        // a directory anyone may read: only the files' own modes protect them
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.path().join("idp.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store.meta_get_or_init("k", b"v").await.unwrap();
        for file in [
            db.clone(),
            with_suffix(&db, "-wal"),
            with_suffix(&db, "-shm"),
        ] {
            assert!(file.exists(), "{} is missing", file.display());
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }

    #[tokio::test]
    async fn a_database_other_users_can_read_is_refused_until_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("idp.db");
        let url = format!("sqlite://{}", db.display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        // closed for good before the files are changed under it
        store.close().await;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        match SqliteStore::connect(&url).await {
            Err(StoreError::Permissions(message)) => {
                assert!(
                    message.contains(&format!("{} (mode 0644)", db.display())),
                    "{message}"
                );
                assert!(
                    message.contains(&format!("run `chmod 600 {}`", db.display())),
                    "{message}"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(mode(&db), 0o644, "the refusal changes nothing");
        // a left-over -wal other users can read is refused too
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
        let wal = with_suffix(&db, "-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            SqliteStore::connect(&url).await,
            Err(StoreError::Permissions(m)) if m.contains(&format!("chmod 600 {}`", wal.display()))
        ));
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o600)).unwrap();
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
    }

    #[test]
    fn only_owner_only_modes_pass() {
        let db = std::path::PathBuf::from("/var/lib/portcullis/idp.db");
        let wal = std::path::PathBuf::from("/var/lib/portcullis/idp.db-wal");
        for (modes, expected) in [
            (vec![(db.clone(), 0o100600)], None),
            (vec![(db.clone(), 0o100400), (wal.clone(), 0o100600)], None),
            (
                vec![(db.clone(), 0o100644)],
                Some(
                    "/var/lib/portcullis/idp.db (mode 0644); it holds the signing keys, so the identity store is not opened: run `chmod 600 /var/lib/portcullis/idp.db`",
                ),
            ),
            (
                vec![(db.clone(), 0o100600), (wal.clone(), 0o100620)],
                Some(
                    "/var/lib/portcullis/idp.db-wal (mode 0620); it holds the signing keys, so the identity store is not opened: run `chmod 600 /var/lib/portcullis/idp.db-wal`",
                ),
            ),
            (
                vec![(db.clone(), 0o100604), (wal.clone(), 0o100660)],
                Some(
                    "/var/lib/portcullis/idp.db (mode 0604), /var/lib/portcullis/idp.db-wal (mode 0660); it holds the signing keys, so the identity store is not opened: run `chmod 600 /var/lib/portcullis/idp.db /var/lib/portcullis/idp.db-wal`",
                ),
            ),
        ] {
            let got = permission_problem(&modes);
            match expected {
                None => assert_eq!(got, None, "{modes:?}"),
                Some(tail) => {
                    let got = got.unwrap();
                    assert!(
                        got.starts_with(
                            "database file readable or writable by other users than its owner: "
                        ),
                        "{got}"
                    );
                    assert!(got.contains(tail), "{got}");
                }
            }
        }
    }
}
