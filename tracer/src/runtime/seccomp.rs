//! Seccomp for the built-in runtime: Docker's default profile (moby's `default.json`,
//! embedded as `profiles/docker-default.json`, Apache-2.0), a profile file, or a bundle's
//! `linux.seccomp`. A profile is resolved as Docker resolves it for runc (rules kept or not
//! by the container's capabilities, this machine's architecture and kernel), stored in the
//! container's config, and compiled with libseccomp and loaded by the container's init just
//! before its command.

use std::{path::Path, str::FromStr as _};

use anyhow::{bail, Context as _};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::{Deserialize, Serialize};

/// Docker's default profile.
const DOCKER_DEFAULT: &str = include_str!("profiles/docker-default.json");

/// `EPERM`: what a refused call returns when the profile names no errno.
const EPERM: u32 = 1;

/// `--seccomp`: which filter the container gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    Unconfined,
    /// Docker's default profile.
    Default,
    /// A profile file: Docker's format (moby's `default.json`) or an OCI `linux.seccomp`.
    File(std::path::PathBuf),
}

impl std::str::FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "unconfined" => Choice::Unconfined,
            "default" => Choice::Default,
            "" => return Err("give unconfined, default or a profile file".into()),
            path => Choice::File(path.into()),
        })
    }
}

/// A profile as Docker's files and OCI bundles write it (OCI's is the subset without
/// `archMap`, `includes` and `excludes`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "nullable")]
    pub syscalls: Vec<Rule>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub sub_architectures: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Filter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Filter>,
}

/// When a rule of Docker's format applies.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "nullable")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// A list that a profile may give as `null`.
fn nullable<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's default profile.
pub fn docker_default() -> Profile {
    serde_json::from_str(DOCKER_DEFAULT).expect("the embedded profile parses")
}

/// A profile file.
pub fn read(path: &Path) -> anyhow::Result<Profile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a seccomp profile", path.display()))
}

/// This machine's architecture, as Docker's profiles name it in `includes`/`excludes`
/// (Go's names) and in `archMap` (libseccomp's).
fn arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "x86" => ("386", "SCMP_ARCH_X86"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        other => (other, "SCMP_ARCH_NATIVE"),
    }
}

/// `6.1` ≤ the running kernel (`6.18.0-…`).
fn kernel_at_least(min: &str, running: &str) -> bool {
    let nums = |s: &str| -> Vec<u32> {
        s.split(['.', '-', '+'])
            .take(2)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    nums(running) >= nums(min)
}

/// The profile as it applies to a container holding `caps` here: rules kept by their
/// `includes`/`excludes`, the architectures named: what Docker hands runc.
pub fn resolve(profile: &Profile, caps: &[String]) -> Profile {
    let (go_arch, scmp_arch) = arch();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let has = |c: &String| caps.contains(c);
    let applies = |r: &Rule| {
        let inc = r.includes.clone().unwrap_or_default();
        let exc = r.excludes.clone().unwrap_or_default();
        inc.caps.iter().all(has)
            && (inc.arches.is_empty() || inc.arches.iter().any(|a| a == go_arch))
            && inc
                .min_kernel
                .as_deref()
                .is_none_or(|m| kernel_at_least(m, &kernel))
            && !exc.caps.iter().any(has)
            && !exc.arches.iter().any(|a| a == go_arch)
    };
    let architectures = match profile
        .arch_map
        .iter()
        .find(|m| m.architecture == scmp_arch)
    {
        Some(m) => std::iter::once(m.architecture.clone())
            .chain(m.sub_architectures.iter().cloned())
            .collect(),
        None => profile.architectures.clone(),
    };
    Profile {
        default_action: profile.default_action.clone(),
        default_errno_ret: profile.default_errno_ret,
        architectures,
        arch_map: Vec::new(),
        syscalls: profile
            .syscalls
            .iter()
            .filter(|r| applies(r))
            .map(|r| Rule {
                includes: None,
                excludes: None,
                ..r.clone()
            })
            .collect(),
    }
}

fn action(
    name: &str,
    errno: Option<u32>,
    default_errno: Option<u32>,
) -> anyhow::Result<ScmpAction> {
    let errno = errno.or(default_errno).unwrap_or(EPERM) as i32;
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno as u16),
        other => bail!("seccomp action {other} is not supported"),
    })
}

fn compare(a: &Arg) -> anyhow::Result<ScmpArgCompare> {
    let (op, datum) = match a.op.as_str() {
        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, a.value),
        "SCMP_CMP_LT" => (ScmpCompareOp::Less, a.value),
        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, a.value),
        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, a.value),
        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, a.value),
        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, a.value),
        // OCI: `value` is the mask, `valueTwo` what the masked argument must equal.
        "SCMP_CMP_MASKED_EQ" => (ScmpCompareOp::MaskedEqual(a.value), a.value_two),
        other => bail!("seccomp comparison {other} is not supported"),
    };
    Ok(ScmpArgCompare::new(a.index, op, datum))
}

/// Compiles a resolved profile into a filter context (names this libseccomp does not know
/// are left out, as runc does).
pub fn compile(p: &Profile, set_nnp: bool) -> anyhow::Result<ScmpFilterContext> {
    let default = action(&p.default_action, p.default_errno_ret, p.default_errno_ret)?;
    let mut ctx = ScmpFilterContext::new(default).context("seccomp filter")?;
    // no_new_privs is the runtime's to set (or not, as the bundle says).
    ctx.set_ctl_nnp(set_nnp)?;
    for a in &p.architectures {
        let arch = ScmpArch::from_str(a).with_context(|| format!("seccomp architecture {a}"))?;
        if arch != ScmpArch::native() {
            ctx.add_arch(arch)?;
        }
    }
    for rule in &p.syscalls {
        let act = action(&rule.action, rule.errno_ret, p.default_errno_ret)?;
        if act == default {
            continue; // libseccomp refuses a rule that changes nothing
        }
        let cmps = rule
            .args
            .iter()
            .map(compare)
            .collect::<Result<Vec<_>, _>>()?;
        for name in &rule.names {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                continue;
            };
            if cmps.is_empty() {
                ctx.add_rule(act, sys)
            } else {
                ctx.add_rule_conditional(act, sys, &cmps)
            }
            .with_context(|| format!("seccomp rule for {name}"))?;
        }
    }
    Ok(ctx)
}

/// Loads a resolved profile into the calling process (the container's init).
pub fn load(p: &Profile) -> anyhow::Result<()> {
    compile(p, false)?
        .load()
        .context("loading the seccomp filter")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    /// Docker's default for a container without CAP_SYS_ADMIN: no rule allows keyctl,
    /// unshare or mount; clone is allowed only without namespace flags; the architectures
    /// are this machine's.
    #[test]
    fn docker_default_resolves_as_docker_does() {
        let p = resolve(&docker_default(), &caps(&["CAP_CHOWN", "CAP_KILL"]));
        assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
        let allowed = |name: &str| {
            p.syscalls
                .iter()
                .filter(|r| r.action == "SCMP_ACT_ALLOW" && r.names.iter().any(|n| n == name))
                .map(|r| r.args.len())
                .collect::<Vec<_>>()
        };
        assert!(allowed("keyctl").is_empty());
        assert!(allowed("unshare").is_empty());
        assert!(allowed("mount").is_empty());
        assert_eq!(allowed("clone"), [1], "clone with a mask on its flags");
        assert_eq!(allowed("read"), [0]);
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                p.architectures,
                ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
            );
        }
        // With CAP_SYS_ADMIN, unshare and mount come back.
        let admin = resolve(&docker_default(), &caps(&["CAP_SYS_ADMIN"]));
        assert!(admin
            .syscalls
            .iter()
            .any(|r| r.action == "SCMP_ACT_ALLOW" && r.names.iter().any(|n| n == "unshare")));
        // It compiles (the filter is not loaded here).
        let ctx = compile(&p, false).unwrap();
        drop(ctx);
    }

    #[test]
    fn choices_and_kernels() {
        assert_eq!("default".parse(), Ok(Choice::Default));
        assert_eq!("unconfined".parse(), Ok(Choice::Unconfined));
        assert_eq!("/x.json".parse(), Ok(Choice::File("/x.json".into())));
        assert!(kernel_at_least("5.8", "6.18.0-1-amd64"));
        assert!(kernel_at_least("6.1", "6.1.0"));
        assert!(!kernel_at_least("6.2", "6.1.99"));
        assert!(!kernel_at_least("5.10", "5.4.0"));
    }

    #[test]
    fn an_oci_profile_reads_as_is() {
        let oci = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#;
        let p: Profile = serde_json::from_str(oci).unwrap();
        let r = resolve(&p, &[]);
        assert_eq!(r.syscalls.len(), 1);
        assert_eq!(r.architectures, ["SCMP_ARCH_X86_64"]);
        compile(&r, false).unwrap();
        let bad: Profile =
            serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_NOPE","syscalls":[]}"#).unwrap();
        assert!(compile(&bad, false)
            .unwrap_err()
            .to_string()
            .contains("SCMP_ACT_NOPE"));
    }
}
