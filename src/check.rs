//! `portcullis check DIR`: translate a manifests folder once and report.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::snapshot::Summary;
use crate::source::files::{FileIssue, Folder};
use crate::translate::{self, Problem};
use crate::world::World;

/// Everything `check` found.
pub struct Report {
    pub summary: Summary,
    pub problems: Vec<Problem>,
    pub file_issues: Vec<FileIssue>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.file_issues.is_empty()
    }
}

/// Reads and translates `dir`.
pub fn check(dir: &Path, cfg: &translate::Config) -> std::io::Result<Report> {
    let mut folder = Folder::new(dir);
    let mut world = World::new();
    folder.rescan(&mut world)?;
    let t = translate::translate(&world, cfg);
    Ok(Report { summary: t.summary(), problems: t.problems, file_issues: folder.issues() })
}

/// The human-readable report.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let routes: Vec<_> = r.summary.routes.iter().chain(r.summary.default_backend.iter()).collect();
    let _ = writeln!(out, "Routes ({}):", routes.len());
    let rows: Vec<[String; 5]> = routes
        .iter()
        .map(|route| {
            let hosts = if route.hosts.is_empty() { "*".to_string() } else { route.hosts.join(",") };
            let path = if route.name.ends_with(".default-backend") {
                "(default backend)".to_string()
            } else {
                format!("{} ({})", route.path, route.path_type)
            };
            let plugins = if route.plugins.is_empty() { "-".to_string() } else { route.plugins.join(",") };
            [hosts, path, route.backend.name.clone(), plugins, route.auth.clone()]
        })
        .collect();
    table(&mut out, ["HOST", "PATH", "SERVICE", "PLUGINS", "AUTH"], &rows);
    if !r.summary.tls.is_empty() {
        let _ = writeln!(out, "\nTLS certificates ({}):", r.summary.tls.len());
        let rows: Vec<[String; 2]> = r.summary.tls.iter().map(|t| [t.host.clone(), t.secret.clone()]).collect();
        table(&mut out, ["HOST", "SECRET"], &rows);
    }
    let credentials: usize = r.summary.consumers.iter().map(|c| c.credentials.len()).sum();
    let _ = writeln!(out, "\nConsumers: {} with {} key-auth credential(s)", r.summary.consumers.len(), credentials);
    let count = r.problems.len() + r.file_issues.len();
    if count == 0 {
        let _ = writeln!(out, "\nNo problems.");
    } else {
        let _ = writeln!(out, "\nProblems ({count}):");
        for i in &r.file_issues {
            let _ = writeln!(out, "  {i}");
        }
        for p in &r.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

/// The machine-readable report (same shape as the golden test files).
pub fn render_yaml(r: &Report) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        summary: &'a Summary,
        problems: &'a [Problem],
        file_issues: Vec<String>,
    }
    let out = Out {
        summary: &r.summary,
        problems: &r.problems,
        file_issues: r.file_issues.iter().map(|i| i.to_string()).collect(),
    };
    serde_yaml_ng::to_string(&out).unwrap_or_else(|e| format!("error: cannot render report: {e}\n"))
}

fn table<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut s = String::from(" ");
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                s.push_str(&format!(" {cell}"));
            } else {
                s.push_str(&format!(" {cell:<w$}"));
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(out, header.to_vec());
    for row in rows {
        line(out, row.iter().map(String::as_str).collect());
    }
}
