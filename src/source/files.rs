//! Local mode: a folder of manifests — exactly what a user would
//! `kubectl apply -f DIR` — loaded into the World and watched for changes.
//!
//! Each file owns the objects it defines. A file that fails to parse keeps
//! its previous objects (the last good state is safer than none) and is
//! reported. An object defined in two files is reported; the first file in
//! path order wins.
//!
//! Re-reading a file parses only the documents whose text changed since its
//! last clean read (a keyed hash of each document's text tells), so one edit
//! in a file of 100,000 objects costs one document, not the file.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use jiff::Timestamp;

use super::folder_records::{Def, FileId, Id, Identify, Records};
use super::manifest;
use crate::at_once::at_once;
use crate::world::{Kind, ObjectError, ObjectRef, Shrunk, World};

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

/// What the folder knows of one file (kept even after a read error).
struct FileState {
    id: FileId,
    /// Keyed hashes of the documents (their text) that did not read cleanly
    /// last time, sorted (usually none): an issue, an object that failed to
    /// apply or one defined again in the file. A document is clean, and not
    /// parsed again while its text is unchanged, when an object's record
    /// names it and it is not here; so clean documents cost no memory
    /// beyond the records.
    dirty: Vec<u64>,
    /// How many objects the file defines.
    defined: usize,
    issues: Vec<FileIssue>,
}

/// An object more than one file defines (reported): each file's
/// definition in path order (the first wins, at least two), and its name.
struct Shared {
    object: ObjectRef,
    defs: Vec<Def>,
}

/// The manifests folder, as last read.
pub struct Folder {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    /// Path of each file number (numbers are never reused).
    paths: Vec<PathBuf>,
    /// The winning definition of every object a file defines.
    objects: Records,
    /// Every definition of the objects more than one file defines.
    shared: HashMap<Id, Shared>,
    identify: Identify,
    /// Randomly keyed: content hashes of Secrets are never comparable outside
    /// this process.
    hasher: foldhash::quality::RandomState,
    /// Documents parsed by the last file read (the others were unchanged).
    last_parsed: usize,
}

/// One object read from a changed document, waiting to be applied.
struct Read {
    chunk: u64,
    index: usize,
    item: Option<usize>,
    outcome: Result<Defined, String>,
}

/// An object a document defines: shrunk as soon as it is read (so the
/// parsed document is dropped at once), and whether it needs a
/// creationTimestamp. No per-object text outlives the parse but what the
/// shrunk object keeps: short-lived strings between long-lived objects
/// would leave the heap's pages full of holes.
struct Defined {
    id: Id,
    kind: Kind,
    object: Result<Shrunk, Box<(ObjectRef, ObjectError)>>,
    stamp: bool,
}

impl Defined {
    fn object_ref(&self) -> ObjectRef {
        match &self.object {
            Ok(shrunk) => shrunk.object_ref(),
            Err(failed) => failed.0.clone(),
        }
    }
}

impl Read {
    fn position(&self) -> Option<String> {
        Some(manifest::position(self.index, self.item))
    }
}

fn parsed(identify: &Identify, hash: u64, doc: manifest::Document) -> Read {
    let outcome = match doc.result {
        Ok(obj) => match obj.object_ref() {
            Some(r) => {
                let stamp = obj.metadata().creation_timestamp.is_none();
                let (id, kind) = (identify.of_ref(&r), r.kind);
                let object = Shrunk::from_object(&obj).map_err(|e| Box::new((r, e)));
                Ok(Defined { id, kind, object, stamp })
            }
            None => Err(format!("{} has no metadata.name; set a name", obj.kind())),
        },
        Err(e) => Err(e.to_string()),
    };
    Read { chunk: hash, index: doc.index, item: doc.item, outcome }
}

/// A file's reads in file order: the two halves as they were parsed, put
/// together only when iterated. Appending the second half to the first
/// would copy both at the peak of a cold start (7 MB more at 100k
/// credentials).
struct Reads(Vec<Read>, Vec<Read>);

impl Reads {
    fn len(&self) -> usize {
        self.0.len() + self.1.len()
    }

    fn iter(&self) -> impl Iterator<Item = &Read> {
        self.0.iter().chain(&self.1)
    }
}

impl std::ops::Index<usize> for Reads {
    type Output = Read;

    fn index(&self, i: usize) -> &Read {
        self.0.get(i).unwrap_or_else(|| &self.1[i - self.0.len()])
    }
}

impl IntoIterator for Reads {
    type Item = Read;
    type IntoIter = std::iter::Chain<std::vec::IntoIter<Read>, std::vec::IntoIter<Read>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().chain(self.1)
    }
}

/// Below this many documents to parse, one thread parses them all.
const SPLIT_FROM: usize = 2048;

/// Parses (and shrinks) the selected chunks of `text`, in file order. A
/// large file's two halves parse at once (most of a cold start with 100k
/// credentials is this); the first error in file order is the one
/// returned, as when one thread reads it all.
fn parse_selected(
    identify: &Identify,
    text: &str,
    chunks: &[manifest::Chunk<'_>],
    hashes: &[u64],
    selected: &[bool],
) -> Result<Reads, manifest::ParseError> {
    let part = |from: usize, to: usize| {
        let mut out = Vec::new();
        manifest::parse_chunks(
            text,
            &chunks[from..to],
            |i| selected[from + i],
            |i, doc| out.push(parsed(identify, hashes[from + i], doc)),
        )
        .map(|()| out)
    };
    let count = selected.iter().filter(|&&s| s).count();
    let middle = if count < SPLIT_FROM {
        chunks.len()
    } else {
        // After the chunk where half the selected ones have been seen.
        let mut seen = 0;
        selected
            .iter()
            .position(|&s| {
                seen += usize::from(s);
                seen > count / 2
            })
            .unwrap_or(chunks.len())
    };
    let (second, first) = if middle == chunks.len() {
        (Ok(Vec::new()), part(0, chunks.len()))
    } else {
        at_once(|| part(middle, chunks.len()), || part(0, middle))
    };
    Ok(Reads(first?, second?))
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
            paths: Vec::new(),
            objects: Records::default(),
            shared: HashMap::new(),
            identify: Identify::default(),
            hasher: foldhash::quality::RandomState::default(),
            last_parsed: 0,
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
                Ok(text) => self.load_text(&path, text, world),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.remove_file(&path, world),
                Err(e) => {
                    // Unreadable right now (permissions, a directory...):
                    // keep what it defined before, report it.
                    self.state(&path).issues = vec![FileIssue {
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
        for shared in self.shared.values() {
            let winner = self.paths[shared.defs[0].file as usize].display().to_string();
            for loser in &shared.defs[1..] {
                out.push(FileIssue {
                    file: self.paths[loser.file as usize].clone(),
                    position: None,
                    object: Some(shared.object.clone()),
                    message: format!("also defined in {winner}, which wins; define each object in one file only"),
                });
            }
        }
        out.sort();
        out
    }

    fn state(&mut self, path: &Path) -> &mut FileState {
        if !self.files.contains_key(path) {
            let id = self.file_id(path);
            let state = FileState { id, dirty: Vec::new(), defined: 0, issues: Vec::new() };
            self.files.insert(path.to_path_buf(), state);
        }
        self.files.get_mut(path).expect("just inserted")
    }

    fn file_id(&mut self, path: &Path) -> FileId {
        match self.paths.iter().position(|p| p == path) {
            Some(i) => i as FileId,
            None => {
                self.paths.push(path.to_path_buf());
                (self.paths.len() - 1) as FileId
            }
        }
    }

    /// The objects `file` defines, with its definition of each.
    fn defined_by(&self, file: FileId) -> Vec<(Id, Def)> {
        let mut out: Vec<(Id, Def)> = self.objects.iter().filter(|(_, def)| def.file == file).collect();
        // Where `file` loses, its definition is only in `shared`.
        for (id, shared) in &self.shared {
            out.extend(shared.defs[1..].iter().filter(|def| def.file == file).map(|def| (*id, *def)));
        }
        out
    }

    /// Reads one file's text: documents whose text is unchanged since the
    /// last clean read are skipped; the rest are parsed one at a time and
    /// shrunk at once. Nothing is applied unless the whole file parses.
    fn load_text(&mut self, path: &Path, text: String, world: &mut World) {
        self.load(path, text, world, false);
    }

    /// `load_text`; `whole`: parse every document, unchanged or not. The
    /// text is dropped as soon as nothing needs it, before the parsed
    /// documents are applied: at 100k credentials it is 35 MB that the
    /// World's growth would otherwise sit on top of (docs/benchmarks.md,
    /// "Where the startup peak sits").
    fn load(&mut self, path: &Path, text: String, world: &mut World, whole: bool) {
        let id = self.state(path).id;
        let chunks = manifest::split(&text);
        let previous = self.defined_by(id);
        let old_dirty = std::mem::take(&mut self.state(path).dirty);
        let old_clean: HashSet<u64> = previous
            .iter()
            .filter(|(_, def)| !def.failed && old_dirty.binary_search(&def.chunk).is_err())
            .map(|(_, def)| def.chunk)
            .collect();
        // Unchanged clean documents, by the hash of their text (the first
        // of several with the same text).
        let mut unchanged: HashSet<u64> = HashSet::new();
        let hashes: Vec<u64> = chunks.iter().map(|c| self.hasher.hash_one(c.text)).collect();
        let mut parsed = 0;
        let mut to_parse = vec![false; chunks.len()];
        for (i, &hash) in hashes.iter().enumerate() {
            if !whole && old_clean.contains(&hash) && unchanged.insert(hash) {
                continue;
            }
            to_parse[i] = true;
            parsed += 1;
        }
        let reads = match parse_selected(&self.identify, &text, &chunks, &hashes, &to_parse) {
            Ok(reads) => reads,
            Err(e) => {
                // Keep the previous objects of this file: a half-saved or
                // mistyped file must not take routes or consumers away.
                let state = self.state(path);
                state.dirty = old_dirty;
                let kept = if state.defined == 0 {
                    String::new()
                } else {
                    format!("; its previous {} object(s) stay in effect until it parses", state.defined)
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
        self.last_parsed = parsed;
        tracing::debug!(file = %path.display(), documents = chunks.len(), parsed, "manifest file read");
        // Only a whole re-read (below) reads the text again, and only when
        // a document was unchanged; at a cold start none is, and its 35 MB
        // (100k credentials) go before the tables below are built.
        let mut text = Some(text).filter(|_| !unchanged.is_empty());

        let mut issues = Vec::new();
        // Documents that must be parsed again next time: an issue, or an
        // object defined twice (both documents, so that the next read sees
        // both again and the last still wins).
        let mut dirty: HashSet<u64> = HashSet::new();
        // The last definition in the file wins.
        let mut latest: HashMap<Id, usize> = HashMap::with_capacity(reads.len());
        for (i, read) in reads.iter().enumerate() {
            match &read.outcome {
                Ok(defined) => {
                    if let Some(prev) = latest.insert(defined.id, i) {
                        dirty.extend([reads[prev].chunk, read.chunk]);
                        issues.push(twice(path, read.position(), &defined.object_ref()));
                    }
                }
                Err(message) => {
                    dirty.insert(read.chunk);
                    issues.push(FileIssue {
                        file: path.to_path_buf(),
                        position: read.position(),
                        object: None,
                        message: message.clone(),
                    });
                }
            }
        }
        // Objects of unchanged documents stay; the file's other old objects
        // are gone unless a changed document defines them.
        let mut gone = Vec::new();
        let mut kept = 0;
        for (object, def) in previous {
            match (unchanged.contains(&def.chunk), latest.contains_key(&object)) {
                (false, false) => gone.push((object, def.kind)),
                (false, true) => {}
                (true, false) => kept += 1,
                (true, true) => {
                    // Moved to, or defined again in, a changed document:
                    // which definition is the last in the file decides, and
                    // only a read of every document knows (rare: not worth
                    // keeping every object's position to avoid it).
                    debug_assert!(!whole, "a whole read leaves no document unchanged");
                    self.state(path).dirty = old_dirty;
                    if let Some(text) = text.take() {
                        return self.load(path, text, world, true);
                    }
                    // Not reached: this document was unchanged, so the
                    // text was kept. Read the file again rather than
                    // apply a partial view.
                    return self.reload([path.to_path_buf()], world);
                }
            }
        }
        drop(old_clean);
        drop(text);
        let mut winners: Vec<bool> = vec![false; reads.len()];
        for &i in latest.values() {
            winners[i] = true;
        }
        drop(latest);

        self.disown(gone, id, world);
        let mut defined = kept;
        let mut stamps = Stamps::new();
        self.objects.reserve(reads.len());
        // Stored after the loop, all at once (each object once: one winner
        // per name; the loop reads only objects stored before this read).
        let mut store = Vec::with_capacity(reads.len());
        for (read, win) in reads.into_iter().zip(winners) {
            let Ok(defined_here) = read.outcome else { continue };
            if !win {
                continue;
            }
            defined += 1;
            let def =
                Def { chunk: read.chunk, file: id, kind: defined_here.kind, failed: defined_here.object.is_err() };
            let (previous, stored, is_winner) = self.define(defined_here.id, def, || defined_here.object_ref());
            let unchanged = previous.is_some_and(|p| p.chunk == read.chunk && !p.failed);
            let Defined { object, stamp, .. } = defined_here;
            match object {
                Ok(obj) if is_winner && !unchanged => {
                    store.push(stamped(obj, stamp && stored, stamp.then_some(&mut stamps), world));
                }
                Ok(_) => {}
                Err(failed) => {
                    let (r, e) = *failed;
                    dirty.insert(read.chunk);
                    issues.push(FileIssue {
                        file: path.to_path_buf(),
                        position: None,
                        object: Some(r),
                        message: e.to_string(),
                    });
                }
            }
        }
        world.apply_all(store);
        let mut dirty: Vec<u64> = dirty.into_iter().collect();
        dirty.sort_unstable();
        let state = self.state(path);
        *state = FileState { id, dirty, defined, issues };
        tracing::debug!(file = %path.display(), objects = defined, "manifest file applied");
    }

    /// How many documents the last file read had to parse.
    pub fn last_parsed(&self) -> usize {
        self.last_parsed
    }

    /// Records `def`, keeping the files in path order. Returns the file's
    /// previous definition, whether any file defined the object before
    /// (only then can it be in the World) and whether `def`'s file wins.
    /// `name` is asked for only when a second file defines the object.
    fn define(&mut self, object: Id, def: Def, name: impl FnOnce() -> ObjectRef) -> (Option<Def>, bool, bool) {
        let paths = &self.paths;
        let in_path_order =
            |defs: &mut Vec<Def>| defs.sort_by(|a, b| paths[a.file as usize].cmp(&paths[b.file as usize]));
        if let Some(shared) = self.shared.get_mut(&object) {
            let previous = shared.defs.iter().find(|d| d.file == def.file).copied();
            match shared.defs.iter_mut().find(|d| d.file == def.file) {
                Some(d) => *d = def,
                None => {
                    shared.defs.push(def);
                    in_path_order(&mut shared.defs);
                }
            }
            let winner = shared.defs[0];
            self.objects.insert(object, winner);
            return (previous, true, winner.file == def.file);
        }
        match self.objects.get(&object) {
            None => {
                self.objects.insert(object, def);
                (None, false, true)
            }
            Some(previous) if previous.file == def.file => (self.objects.insert(object, def), true, true),
            Some(previous) => {
                // A second file defines it.
                let mut defs = vec![previous, def];
                in_path_order(&mut defs);
                let winner = defs[0];
                self.objects.insert(object, winner);
                self.shared.insert(object, Shared { object: name(), defs });
                (None, true, winner.file == def.file)
            }
        }
    }

    fn remove_file(&mut self, path: &Path, world: &mut World) {
        let Some(old) = self.files.remove(path) else { return };
        let objects = self.defined_by(old.id).into_iter().map(|(object, def)| (object, def.kind)).collect();
        self.disown(objects, old.id, world);
    }

    /// `file` no longer defines these objects: each is deleted, or falls
    /// back to another file that defines it too.
    fn disown(&mut self, objects: Vec<(Id, Kind)>, file: FileId, world: &mut World) {
        let mut deleted = HashSet::new();
        let mut kinds = BTreeSet::new();
        for (object, kind) in objects {
            let Some(shared) = self.shared.get_mut(&object) else {
                if self.objects.get(&object).is_some_and(|def| def.file == file) {
                    self.objects.remove(&object);
                    deleted.insert(object);
                    kinds.insert(kind);
                }
                continue;
            };
            let was_winner = shared.defs[0].file == file;
            shared.defs.retain(|def| def.file != file);
            let next = shared.defs[0];
            let r = if shared.defs.len() == 1 {
                self.shared.remove(&object).map(|s| s.object)
            } else {
                Some(shared.object.clone())
            };
            self.objects.insert(object, next);
            if let Some(r) = r.filter(|_| was_winner) {
                self.reapply_from(&r, next.file, world);
            }
        }
        if !deleted.is_empty() {
            for r in self.named(&deleted, &kinds, world) {
                world.delete(&r);
            }
        }
    }

    /// The objects of the World with these identities (those stored: an
    /// object that never applied has nothing to delete). One pass over the
    /// stores of these kinds, only when a file stops defining objects
    /// (~4 ms for a store of 100,000).
    fn named(&self, objects: &HashSet<Id>, kinds: &BTreeSet<Kind>, world: &World) -> Vec<ObjectRef> {
        let mut out = Vec::new();
        let mut find = |kind: Kind, keys: &mut dyn Iterator<Item = (&str, &str)>| {
            if !kinds.contains(&kind) {
                return;
            }
            for (namespace, name) in keys {
                if objects.contains(&self.identify.of(kind, namespace, name)) {
                    out.push(ObjectRef::new(kind, Some(namespace.to_string()), name));
                }
            }
        };
        find(Kind::Ingress, &mut world.ingresses.keys());
        find(Kind::IngressClass, &mut world.ingress_classes.keys());
        find(Kind::Service, &mut world.services.keys());
        find(Kind::EndpointSlice, &mut world.endpoint_slices.keys());
        find(Kind::Secret, &mut world.secrets.keys());
        find(Kind::KongConsumer, &mut world.consumers.keys());
        find(Kind::KongPlugin, &mut world.plugins.keys());
        find(Kind::KongClusterPlugin, &mut world.cluster_plugins.keys());
        out
    }

    /// Re-reads `file` and applies its definition of `r` (rare: only when a
    /// duplicate's winning file stops defining it). Definitions are not kept
    /// in memory because they may hold Secret data.
    fn reapply_from(&mut self, r: &ObjectRef, file: FileId, world: &mut World) {
        let path = self.paths[file as usize].clone();
        let Ok(text) = std::fs::read_to_string(&path) else { return };
        let Ok(docs) = manifest::parse(&text) else { return };
        let Some(obj) = docs.into_iter().filter_map(|d| d.result.ok()).rfind(|o| o.object_ref().as_ref() == Some(r))
        else {
            return;
        };
        let stamp = obj.metadata().creation_timestamp.is_none();
        match Shrunk::from_object(&obj) {
            Ok(shrunk) => apply(shrunk, stamp, stamp.then_some(&mut Stamps::new()), world),
            Err(e) => self.state(&path).issues.push(FileIssue {
                file: path.clone(),
                position: None,
                object: Some(r.clone()),
                message: e.to_string(),
            }),
        }
    }
}

fn twice(path: &Path, position: Option<String>, r: &ObjectRef) -> FileIssue {
    FileIssue {
        file: path.to_path_buf(),
        position,
        object: Some(r.clone()),
        message: "defined twice in this file; the last definition wins".into(),
    }
}

/// Stores a shrunk object (see `stamped`).
fn apply(obj: Shrunk, look_up: bool, stamp: Option<&mut Stamps>, world: &mut World) {
    let obj = stamped(obj, look_up, stamp, world);
    world.apply_shrunk(obj);
}

/// A shrunk object ready to store. Without a creationTimestamp in the
/// manifest, the object keeps the time it was first seen (the stored
/// object's) while it exists, so "oldest wins" rules are stable across
/// edits. `look_up` is false for an object no file defined before (not
/// stored yet).
fn stamped(mut obj: Shrunk, look_up: bool, stamp: Option<&mut Stamps>, world: &World) -> Shrunk {
    if let Some(stamps) = stamp {
        let stored = if look_up { created(world, &obj.object_ref()) } else { None };
        obj.meta_mut().set_created(stored.unwrap_or_else(|| stamps.next()));
    }
    obj
}

/// Creation times for the objects of one file read that have none: the
/// time of the read, one nanosecond apart in file order, so that "older"
/// still means "earlier in the file" (the clock is read once, not 200,000
/// times at startup).
struct Stamps {
    read_at: Timestamp,
    given: i64,
}

impl Stamps {
    fn new() -> Self {
        Self { read_at: Timestamp::now(), given: 0 }
    }

    fn next(&mut self) -> Timestamp {
        let at = self.read_at.checked_add(jiff::SignedDuration::from_nanos(self.given)).unwrap_or(self.read_at);
        self.given += 1;
        at
    }
}

/// The creation time of the stored object `r`, if any.
fn created(world: &World, r: &ObjectRef) -> Option<Timestamp> {
    let key = (r.namespace.clone().unwrap_or_default(), r.name.clone());
    match r.kind {
        Kind::Ingress => world.ingresses.get(&key).map(|o| o.meta.created()),
        Kind::IngressClass => world.ingress_classes.get(&key).map(|o| o.meta.created()),
        Kind::Service => world.services.get(&key).map(|o| o.meta.created()),
        Kind::EndpointSlice => world.endpoint_slices.get(&key).map(|o| o.meta.created()),
        Kind::Secret => world.secrets.get(&key).map(|o| o.meta.created()),
        Kind::KongConsumer => world.consumers.get(&key).map(|o| o.meta.created()),
        Kind::KongPlugin => world.plugins.get(&key).map(|o| o.meta.created()),
        Kind::KongClusterPlugin => world.cluster_plugins.get(&key).map(|o| o.meta.created()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, port: u16) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports: [{{port: {port}}}]\n")
    }

    fn big(n: usize, edited: Option<(usize, u16)>) -> String {
        (0..n)
            .map(|i| svc(&format!("s{i}"), edited.filter(|(e, _)| *e == i).map_or(80, |(_, p)| p)))
            .collect::<Vec<_>>()
            .join("---\n")
    }

    fn port(world: &World, name: &str) -> Option<i32> {
        world.services.get(&("default".to_string(), name.to_string())).map(|s| s.ports[0].port)
    }

    fn setup(text: &str) -> (tempfile::TempDir, PathBuf, Folder, World) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, text).unwrap();
        let mut folder = Folder::new(dir.path());
        let mut world = World::new();
        folder.rescan(&mut world).unwrap();
        world.take_changes();
        (dir, path, folder, world)
    }

    fn rewrite(folder: &mut Folder, world: &mut World, path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        folder.reload([path.to_path_buf()], world);
    }

    #[test]
    fn only_the_edited_document_of_a_big_file_is_parsed_and_applied() {
        let (_dir, path, mut folder, mut world) = setup(&big(200, None));
        assert_eq!(folder.last_parsed(), 200);
        assert_eq!(world.services.len(), 200);

        rewrite(&mut folder, &mut world, &path, &big(200, None));
        assert_eq!(folder.last_parsed(), 0, "unchanged documents are not parsed again");
        assert!(world.take_changes().is_empty());

        rewrite(&mut folder, &mut world, &path, &big(200, Some((137, 81))));
        assert_eq!(folder.last_parsed(), 1);
        assert_eq!(port(&world, "s137"), Some(81));
        assert_eq!(port(&world, "s136"), Some(80));
        assert_eq!(world.take_changes().into_iter().collect::<Vec<_>>(), [Kind::Service]);
        assert!(folder.issues().is_empty());

        // Removing a document deletes its object and nothing else.
        let text = big(200, Some((137, 81))).replacen(&(svc("s5", 80) + "---\n"), "", 1);
        rewrite(&mut folder, &mut world, &path, &text);
        assert_eq!(folder.last_parsed(), 0);
        assert_eq!(world.services.len(), 199);
        assert_eq!(port(&world, "s5"), None);
    }

    #[test]
    fn a_syntax_error_keeps_everything_and_the_fix_applies() {
        let (_dir, path, mut folder, mut world) = setup(&big(20, None));
        let broken = big(20, Some((3, 81))) + "---\napiVersion: v1\nkind: Service\nmetadata: [unclosed\n";
        rewrite(&mut folder, &mut world, &path, &broken);
        assert_eq!(port(&world, "s3"), Some(80), "nothing applies from a file that does not parse");
        assert_eq!(world.services.len(), 20);
        let issues = folder.issues();
        assert_eq!(issues.len(), 1);
        assert!(issues[0].message.contains("document 21 at line 14"), "{}", issues[0].message);
        assert!(issues[0].message.contains("20 object(s) stay in effect"), "{}", issues[0].message);

        rewrite(&mut folder, &mut world, &path, &big(20, Some((3, 81))));
        assert_eq!(folder.last_parsed(), 1);
        assert_eq!(port(&world, "s3"), Some(81));
        assert!(folder.issues().is_empty());
    }

    #[test]
    fn duplicates_in_one_file_follow_the_last_definition_across_edits() {
        let (_dir, path, mut folder, mut world) = setup(&big(3, None));
        // s1 defined again at the end, then that definition removed.
        let twice = format!("{}---\n{}", big(3, None), svc("s1", 90));
        rewrite(&mut folder, &mut world, &path, &twice);
        assert_eq!(port(&world, "s1"), Some(90));
        let issues = folder.issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].position.as_deref(), Some("document 4"));

        // The same again, as an unchanged file: still reported, still 90.
        rewrite(&mut folder, &mut world, &path, &twice);
        assert_eq!(port(&world, "s1"), Some(90));
        assert_eq!(folder.issues().len(), 1);

        rewrite(&mut folder, &mut world, &path, &big(3, None));
        assert_eq!(port(&world, "s1"), Some(80), "the earlier definition applies again");
        assert!(folder.issues().is_empty());

        // A pasted copy of an unchanged document is a duplicate too.
        let pasted = format!("{}---\n{}", big(3, None), svc("s1", 80));
        rewrite(&mut folder, &mut world, &path, &pasted);
        let issues = folder.issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].position.as_deref(), Some("document 4"));

        // Defined again before its unchanged document: that one is still
        // the last, and wins. Only positions tell, so the file is read whole.
        rewrite(&mut folder, &mut world, &path, &big(3, None));
        let earlier = format!("{}---\n{}", svc("s2", 99), big(3, None));
        rewrite(&mut folder, &mut world, &path, &earlier);
        assert_eq!(port(&world, "s2"), Some(80), "the later definition wins");
        assert_eq!(folder.last_parsed(), 4);
        let issues = folder.issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].position.as_deref(), Some("document 4"));
    }

    #[test]
    fn objects_no_file_defines_any_more_are_deleted_whatever_their_scope() {
        let class = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: kong\nspec:\n  controller: ingress-controllers.konghq.com/kong\n";
        let team =
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: s0\n  namespace: team\nspec:\n  ports: [{port: 80}]\n";
        let (_dir, path, mut folder, mut world) = setup(&format!("{class}---\n{team}---\n{}", big(2, None)));
        assert_eq!((world.ingress_classes.len(), world.services.len()), (1, 3));

        // The same names in other scopes stay.
        rewrite(&mut folder, &mut world, &path, &big(2, None));
        assert_eq!((world.ingress_classes.len(), world.services.len()), (0, 2));
        assert_eq!(port(&world, "s0"), Some(80));

        std::fs::remove_file(&path).unwrap();
        folder.reload([path.clone()], &mut world);
        assert_eq!((world.ingress_classes.len(), world.services.len()), (0, 0));
    }

    #[test]
    fn a_bad_document_is_reported_again_on_every_read() {
        let text = format!("{}---\napiVersion: v1\nkind: Service\nmetadata: {{}}\n", svc("a", 80));
        let (_dir, path, mut folder, mut world) = setup(&text);
        assert_eq!(folder.issues().len(), 1);
        rewrite(&mut folder, &mut world, &path, &text);
        assert_eq!(folder.last_parsed(), 1, "only the bad document is read again");
        assert_eq!(folder.issues().len(), 1);
    }

    /// Files of `SPLIT_FROM` documents or more parse in two halves: the
    /// same objects, in the same order, and the same first error.
    #[test]
    fn a_file_parsed_in_halves_reads_as_one() {
        let n = SPLIT_FROM * 2 + 7;
        let (_dir, path, mut folder, mut world) = setup(&big(n, None));
        assert_eq!((folder.last_parsed(), world.services.len()), (n, n));
        assert!(folder.issues().is_empty());

        // The same name twice, once in each half: the later one wins.
        let twice = format!("{}---\n{}", big(n, None).replacen("name: s3\n", "name: dup\n", 1), svc("dup", 99));
        rewrite(&mut folder, &mut world, &path, &twice);
        assert_eq!(port(&world, "dup"), Some(99));
        assert_eq!(folder.issues()[0].position.as_deref(), Some(format!("document {}", n + 1).as_str()));
        // Read cold, every document is parsed: the two definitions come
        // from different halves of the parse, and still the later wins.
        let (_cold_dir, _, cold, cold_world) = setup(&twice);
        assert_eq!((cold.last_parsed(), port(&cold_world, "dup")), (n + 1, Some(99)));
        assert_eq!(cold.issues()[0].position.as_deref(), Some(format!("document {}", n + 1).as_str()));

        let broken_at = |docs: &[usize]| {
            let mut text = big(n, Some((1, 81)));
            for &d in docs.iter().rev() {
                let at = text.match_indices("---\n").nth(d - 1).map(|(i, _)| i).unwrap();
                text.insert_str(at, "---\nmetadata: [unclosed\n");
            }
            text
        };
        for (docs, reported) in [(vec![n - 10], n - 9), (vec![5, n - 10], 6)] {
            rewrite(&mut folder, &mut world, &path, &broken_at(&docs));
            assert_eq!(port(&world, "s1"), Some(80), "nothing applies from a file that does not parse");
            let issues = folder.issues();
            assert_eq!(issues.len(), 1, "{issues:?}");
            assert!(issues[0].message.contains(&format!("document {reported} ")), "{}", issues[0].message);
        }
    }

    /// Objects without a creationTimestamp are as old as their read, in
    /// file order (contests between them go to the earlier one), and keep
    /// that time when their file is read again.
    #[test]
    fn unstamped_objects_age_in_file_order_and_keep_their_time() {
        let created = |world: &World, name: &str| {
            world.services.get(&("default".to_string(), name.to_string())).map(|s| s.meta.created())
        };
        let text = [svc("z", 80), svc("a", 80), svc("m", 80)].join("---\n");
        let (_dir, path, mut folder, mut world) = setup(&text);
        let times: Vec<_> = ["z", "a", "m"].iter().map(|n| created(&world, n).unwrap()).collect();
        assert!(times[0] < times[1] && times[1] < times[2], "{times:?}");

        rewrite(&mut folder, &mut world, &path, &[svc("z", 80), svc("a", 81), svc("m", 80)].join("---\n"));
        assert_eq!(port(&world, "a"), Some(81));
        assert_eq!(created(&world, "a"), Some(times[1]), "a changed object keeps its creation time");
    }
}
