//! Secrets stay home: command lines and paths often carry tokens, so every export (JSON
//! Lines, the trace document, `report --format json`, OTLP spans) blanks what looks like
//! one. The rules are set once for the process (`--redact REGEX`, on top of the defaults);
//! the terminal's own stream is not an export and shows what ran.

use std::{borrow::Cow, sync::OnceLock};

use regex::{Regex, RegexSet};

use super::{Detail, Event};

/// What a secret is replaced with.
pub const BLANK: &str = "***";

/// `--password=…`, `--token=…`, `--api-key=…`, `NAME_KEY=…`, `DB_PASSWORD=…`, and the
/// password in `scheme://user:password@host`: the name is kept, the value blanked.
const DEFAULTS: &[&str] = &[
    r"(?i)(--?[a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|credentials?)[a-z0-9_.-]*=)[^\s]+",
    r"(?i)(\b[a-z0-9_]*(?:password|passwd|secret|token|_key|apikey)[a-z0-9_]*=)[^\s]+",
    r"(://[^/\s:@]+:)[^@\s/]+(@)",
];

/// An option whose value is the next argument (`--password hunter2`).
const FLAG_BEFORE_VALUE: &str =
    r"(?i)^--?[a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)$";

pub struct Redactor {
    /// The defaults: groups kept around the blanked value.
    keyed: Vec<Regex>,
    /// `--redact`: the whole match blanked.
    given: Vec<Regex>,
    /// Every rule, to tell quickly that a text needs nothing.
    any: RegexSet,
    flag: Regex,
}

static GLOBAL: OnceLock<Redactor> = OnceLock::new();

impl Redactor {
    /// The defaults and the `--redact` expressions (a bad one is an error naming it).
    pub fn new(given: &[String]) -> anyhow::Result<Self> {
        let compile = |r: &str| {
            Regex::new(r)
                .map_err(|e| anyhow::anyhow!("--redact {r:?} is not a valid expression: {e}"))
        };
        let keyed: Vec<Regex> = DEFAULTS
            .iter()
            .map(|r| compile(r))
            .collect::<Result<_, _>>()?;
        let given: Vec<Regex> = given.iter().map(|r| compile(r)).collect::<Result<_, _>>()?;
        let any = RegexSet::new(DEFAULTS.iter().copied().chain(given_sources(&given)))?;
        Ok(Self {
            keyed,
            given,
            any,
            flag: compile(FLAG_BEFORE_VALUE)?,
        })
    }

    /// Sets the rules for every export of this process (once, from the command line).
    pub fn install(self) {
        let _ = GLOBAL.set(self);
    }

    /// The rules in force (the defaults when none were installed).
    pub fn global() -> &'static Redactor {
        GLOBAL.get_or_init(|| Redactor::new(&[]).expect("the default rules compile"))
    }

    /// `s` with its secrets blanked.
    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if !self.any.is_match(s) {
            return Cow::Borrowed(s);
        }
        let mut out = s.to_string();
        for r in &self.keyed {
            out = r
                .replace_all(&out, |c: &regex::Captures| {
                    let tail = c.get(2).map_or("", |m| m.as_str());
                    format!("{}{BLANK}{tail}", &c[1])
                })
                .into_owned();
        }
        for r in &self.given {
            out = r.replace_all(&out, BLANK).into_owned();
        }
        Cow::Owned(out)
    }

    /// An argv with its secrets blanked, and the value after `--password` and the like.
    pub fn argv<'a>(&self, argv: &'a [String]) -> Cow<'a, [String]> {
        let mut out: Option<Vec<String>> = None;
        let mut after_flag = false;
        for (i, a) in argv.iter().enumerate() {
            let new = if after_flag {
                Some(BLANK.to_string())
            } else {
                match self.text(a) {
                    Cow::Owned(s) => Some(s),
                    Cow::Borrowed(_) => None,
                }
            };
            after_flag = self.flag.is_match(a);
            if let Some(new) = new {
                out.get_or_insert_with(|| argv.to_vec())[i] = new;
            }
        }
        out.map_or(Cow::Borrowed(argv), Cow::Owned)
    }

    /// An event as exports show it: its argv, paths and names blanked where they hold a
    /// secret.
    pub fn event<'a>(&self, ev: &'a Event) -> Cow<'a, Event> {
        match &ev.detail {
            Detail::Exec { argv, filename, .. } => {
                let (new_argv, new_file) = (self.argv(argv), self.text(filename));
                if matches!((&new_argv, &new_file), (Cow::Borrowed(_), Cow::Borrowed(_))) {
                    return Cow::Borrowed(ev);
                }
                let mut ev = ev.clone();
                if let Detail::Exec { argv, filename, .. } = &mut ev.detail {
                    *argv = new_argv.into_owned();
                    *filename = new_file.into_owned();
                }
                Cow::Owned(ev)
            }
            Detail::Mount { source, .. } => match self.text(source) {
                Cow::Borrowed(_) => Cow::Borrowed(ev),
                Cow::Owned(s) => {
                    let mut ev = ev.clone();
                    if let Detail::Mount { source, .. } = &mut ev.detail {
                        *source = s;
                    }
                    Cow::Owned(ev)
                }
            },
            _ => Cow::Borrowed(ev),
        }
    }
}

fn given_sources(given: &[Regex]) -> impl Iterator<Item = &str> {
    given.iter().map(Regex::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(r: &Redactor, a: &[&str]) -> Vec<String> {
        let a: Vec<String> = a.iter().map(|s| (*s).to_string()).collect();
        r.argv(&a).into_owned()
    }

    #[test]
    fn defaults_blank_values_and_keep_names() {
        let r = Redactor::new(&[]).unwrap();
        assert_eq!(
            argv(
                &r,
                &[
                    "app",
                    "--password=hunter2",
                    "--token",
                    "abc",
                    "-e",
                    "AWS_SECRET_KEY=xyz"
                ]
            ),
            [
                "app",
                "--password=***",
                "--token",
                "***",
                "-e",
                "AWS_SECRET_KEY=***"
            ]
        );
        assert_eq!(r.text("postgres://bob:pw@db/x"), "postgres://bob:***@db/x");
        assert_eq!(r.text("sleep 5"), "sleep 5");
        assert!(matches!(r.text("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn given_expressions_blank_the_match() {
        let r = Redactor::new(&["ghp_[A-Za-z0-9]+".into()]).unwrap();
        assert_eq!(
            argv(&r, &["git", "clone", "ghp_abc123"]),
            ["git", "clone", "***"]
        );
        let e = Redactor::new(&["(".into()]).map(drop).unwrap_err();
        assert!(e.to_string().contains("--redact \"(\""), "{e}");
    }
}
