//! Local mode: a folder of manifests — exactly what a user would
//! `kubectl apply -f DIR` — loaded into the World and watched for changes.
//!
//! Each file owns the objects it defines. A file that fails to parse keeps
//! its previous objects (the last good state is safer than none) and is
//! reported. An object defined in two files is reported; the first file in
//! path order wins.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::manifest;
use crate::world::{Object, ObjectRef, World};

/// Something wrong with a manifest file or one of its documents.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileIssue {
    pub file: PathBuf,
    /// "document 2" / "document 1, item 3"; None for the whole file.
    pub position: Option<String>,
    pub object: Option<ObjectRef>,
    pub message: String,
}

impl std::fmt::Display for FileIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = &self.position {
            write!(f, " ({p})")?;
        }
        if let Some(o) = &self.object {
            write!(f, " {o}")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Default)]
struct FileState {
    /// Objects this file defines, with a keyed hash of their content so an
    /// unchanged object is not re-applied (and does not trigger a rebuild).
    objects: BTreeMap<ObjectRef, u64>,
    issues: Vec<FileIssue>,
}

/// The manifests folder, as last read.
pub struct Folder {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    /// Which files define each object (more than one = duplicate).
    owners: BTreeMap<ObjectRef, BTreeSet<PathBuf>>,
    /// creationTimestamp for objects whose manifest has none: the time they
    /// were first seen, kept while they exist so "oldest wins" is stable.
    first_seen: HashMap<ObjectRef, Timestamp>,
    /// Randomly keyed: content hashes of Secrets are never comparable outside
    /// this process.
    hasher: RandomState,
}

/// Whether a path is a manifest we read (`*.yaml`, `*.yml`, `*.json`; not
/// hidden or editor temp files).
pub fn is_manifest(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') || name.ends_with('~') {
        return false;
    }
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

impl Folder {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: BTreeMap::new(),
            owners: BTreeMap::new(),
            first_seen: HashMap::new(),
            hasher: RandomState::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads every manifest in the folder (a full rescan: files that
    /// disappeared are removed). Errors only when the folder itself cannot
    /// be listed.
    pub fn rescan(&mut self, world: &mut World) -> std::io::Result<()> {
        let mut present = BTreeSet::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if is_manifest(&path) && path.is_file() {
                present.insert(path);
            }
        }
        let gone: Vec<PathBuf> = self.files.keys().filter(|p| !present.contains(*p)).cloned().collect();
        self.reload(gone.into_iter().chain(present), world);
        Ok(())
    }

    /// Re-reads the given paths (changed, created or removed).
    pub fn reload(&mut self, paths: impl IntoIterator<Item = PathBuf>, world: &mut World) {
        for path in paths {
            if !is_manifest(&path) {
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => self.load_text(&path, &text, world),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.remove_file(&path, world),
                Err(e) => {
                    // Unreadable right now (permissions, a directory...):
                    // keep what it defined before, report it.
                    let state = self.files.entry(path.clone()).or_default();
                    state.issues = vec![FileIssue {
                        file: path.clone(),
                        position: None,
                        object: None,
                        message: format!("cannot read file: {e}"),
                    }];
                }
            }
        }
    }

    /// Every current issue, sorted.
    pub fn issues(&self) -> Vec<FileIssue> {
        let mut out: Vec<FileIssue> = self.files.values().flat_map(|f| f.issues.iter().cloned()).collect();
        for (r, files) in &self.owners {
            if files.len() > 1 {
                let mut it = files.iter();
                let winner = it.next().map(|p| p.display().to_string()).unwrap_or_default();
                for loser in it {
                    out.push(FileIssue {
                        file: loser.clone(),
                        position: None,
                        object: Some(r.clone()),
                        message: format!("also defined in {winner}, which wins; define each object in one file only"),
                    });
                }
            }
        }
        out.sort();
        out
    }

    fn load_text(&mut self, path: &Path, text: &str, world: &mut World) {
        let docs = match manifest::parse(text) {
            Ok(docs) => docs,
            Err(e) => {
                // Keep the previous objects of this file: a half-saved or
                // mistyped file must not take routes or consumers away.
                let state = self.files.entry(path.to_path_buf()).or_default();
                let kept = if state.objects.is_empty() {
                    String::new()
                } else {
                    format!("; its previous {} object(s) stay in effect until it parses", state.objects.len())
                };
                state.issues = vec![FileIssue {
                    file: path.to_path_buf(),
                    position: None,
                    object: None,
                    message: format!("{e}{kept}"),
                }];
                tracing::warn!(file = %path.display(), error = %e, "manifest file does not parse");
                return;
            }
        };
        let mut issues = Vec::new();
        let mut objects: BTreeMap<ObjectRef, (u64, Object)> = BTreeMap::new();
        for doc in docs {
            let position = Some(doc.position());
            match doc.result {
                Ok(obj) => match obj.object_ref() {
                    Some(r) => {
                        let hash = self.content_hash(&obj);
                        if objects.insert(r.clone(), (hash, obj)).is_some() {
                            issues.push(FileIssue {
                                file: path.to_path_buf(),
                                position,
                                object: Some(r),
                                message: "defined twice in this file; the last definition wins".into(),
                            });
                        }
                    }
                    None => issues.push(FileIssue {
                        file: path.to_path_buf(),
                        position,
                        object: None,
                        message: format!("{} has no metadata.name; set a name", obj.kind()),
                    }),
                },
                Err(e) => {
                    issues.push(FileIssue { file: path.to_path_buf(), position, object: None, message: e.to_string() })
                }
            }
        }

        let old = self.files.remove(path).unwrap_or_default();
        let mut state = FileState { objects: BTreeMap::new(), issues };
        for (r, _) in old.objects.iter().filter(|(r, _)| !objects.contains_key(*r)) {
            self.disown(r, path, world);
        }
        for (r, (hash, mut obj)) in objects {
            let owners = self.owners.entry(r.clone()).or_default();
            owners.insert(path.to_path_buf());
            let is_winner = owners.first().is_some_and(|p| p == path);
            // Re-apply an unchanged object only if applying it failed last time.
            let unchanged =
                old.objects.get(&r) == Some(&hash) && !old.issues.iter().any(|i| i.object.as_ref() == Some(&r));
            state.objects.insert(r.clone(), hash);
            if is_winner && !unchanged {
                self.apply(&r, &mut obj, world, &mut state.issues, path);
            }
        }
        self.files.insert(path.to_path_buf(), state);
    }

    fn apply(&mut self, r: &ObjectRef, obj: &mut Object, world: &mut World, issues: &mut Vec<FileIssue>, path: &Path) {
        let meta = obj.metadata_mut();
        if meta.creation_timestamp.is_none() {
            let seen = *self.first_seen.entry(r.clone()).or_insert_with(Timestamp::now);
            meta.creation_timestamp = Some(Time(seen));
        }
        if let Err(e) = world.apply(obj.clone()) {
            issues.push(FileIssue {
                file: path.to_path_buf(),
                position: None,
                object: Some(r.clone()),
                message: e.to_string(),
            });
        }
    }

    fn remove_file(&mut self, path: &Path, world: &mut World) {
        if let Some(old) = self.files.remove(path) {
            for r in old.objects.keys() {
                self.disown(r, path, world);
            }
        }
    }

    /// `path` no longer defines `r`: delete it, or fall back to another file
    /// that defines it too.
    fn disown(&mut self, r: &ObjectRef, path: &Path, world: &mut World) {
        let Some(owners) = self.owners.get_mut(r) else { return };
        let was_winner = owners.first().is_some_and(|p| p == path);
        owners.remove(path);
        match owners.first().cloned() {
            None => {
                self.owners.remove(r);
                self.first_seen.remove(r);
                world.delete(r);
            }
            Some(next) if was_winner => self.reapply_from(r, &next, world),
            Some(_) => {}
        }
    }

    /// Re-reads `file` and applies its definition of `r` (rare: only when a
    /// duplicate's winning file stops defining it). Definitions are not kept
    /// in memory because they may hold Secret data.
    fn reapply_from(&mut self, r: &ObjectRef, file: &Path, world: &mut World) {
        let Ok(text) = std::fs::read_to_string(file) else { return };
        let Ok(docs) = manifest::parse(&text) else { return };
        for doc in docs {
            if let Ok(mut obj) = doc.result
                && obj.object_ref().as_ref() == Some(r)
            {
                let mut issues = Vec::new();
                self.apply(r, &mut obj, world, &mut issues, file);
                if let Some(state) = self.files.get_mut(file) {
                    state.issues.extend(issues);
                }
            }
        }
    }

    fn content_hash(&self, obj: &Object) -> u64 {
        // Debug output covers every field; it is hashed, never stored.
        self.hasher.hash_one(format!("{obj:?}"))
    }
}
