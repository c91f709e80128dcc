//! Attribute arguments, parsed and checked. Value parsing is shared with the
//! `COLDSTART_*` variables (coldstart-bootstrap), so both accept the same values.

use coldstart_bootstrap::plan::settings::{self, Key};
use coldstart_bootstrap::{Flavor, Strategy};
use proc_macro2::Span;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, Meta, MetaNameValue, Token};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Main => "coldstart::main",
            Kind::Test => "coldstart::test",
        }
    }

    fn valid(self) -> &'static [&'static str] {
        match self {
            Kind::Main => &[
                "flavor",
                "worker_threads",
                "start_paused",
                "crate",
                "name",
                "strategy",
                "max_blocking_threads",
                "thread_stack_size",
                "prewarm",
                "profile",
            ],
            Kind::Test => &["flavor", "worker_threads", "start_paused", "crate", "name"],
        }
    }
}

#[derive(Default)]
pub(crate) struct Config {
    pub(crate) flavor: Option<Flavor>,
    pub(crate) worker_threads: Option<usize>,
    pub(crate) start_paused: Option<bool>,
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<String>,
    pub(crate) strategy: Option<Strategy>,
    pub(crate) max_blocking_threads: Option<usize>,
    pub(crate) thread_stack_size: Option<usize>,
    pub(crate) prewarm: Option<bool>,
    pub(crate) profile: Option<syn::LitStr>,
}

/// A literal's text as a setting reads it; a negated literal (`-1`, which syn parses
/// as a literal only where nothing follows it) with its sign; `None` for anything
/// else (a constant, an expression).
fn literal_text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => literal_text(expr).map(|text| format!("-{text}")),
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Some(s.value()),
            // A unit written as a suffix (`2M`) is part of the value; a Rust integer
            // type (`4usize`) is not.
            Lit::Int(i) => Some(match i.suffix() {
                "" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32"
                | "i64" | "i128" | "isize" => i.base10_digits().to_owned(),
                unit => format!("{}{unit}", i.base10_digits()),
            }),
            Lit::Bool(b) => Some(b.value.to_string()),
            // Refused by every parser, and shown as written.
            Lit::Float(f) => Some(f.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn value<T>(nv: &MetaNameValue, key: Key, parse: fn(&str) -> Option<T>) -> syn::Result<T> {
    let text = literal_text(&nv.value).ok_or_else(|| {
        // A constant or an expression (`2 * 1024`): only a literal is read at compile
        // time.
        let value = &nv.value;
        syn::Error::new_spanned(
            value,
            format!(
                "set {} to {}, written as a literal, got `{}`",
                key.argument,
                key.accepts,
                quote::quote!(#value)
            ),
        )
    })?;
    key.parse_argument(&text, parse)
        .map_err(|e| syn::Error::new_spanned(&nv.value, e.to_string()))
}

/// The arguments as `name = value` pairs. A bare name or a list (`fast`,
/// `flavor("x")`) is an error that says what the name is: unknown, with the valid
/// ones, or one that takes a value; a scheduler named alone (`multi_thread`) gets
/// tokio's hint to set the flavor.
fn named_values(
    args: proc_macro2::TokenStream,
    kind: Kind,
) -> syn::Result<Punctuated<MetaNameValue, Token![,]>> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut pairs = Punctuated::new();
    for meta in metas {
        let name = argument_name(meta.path());
        // tokio's hint for a scheduler named alone (`#[tokio::main(multi_thread)]`).
        let flavor = match (&meta, name.as_str()) {
            (Meta::Path(_), "multi_thread" | "threaded_scheduler") => Some("multi_thread"),
            (Meta::Path(_), "current_thread" | "basic_scheduler" | "single_threaded") => {
                Some("current_thread")
            }
            _ => None,
        };
        if let Some(flavor) = flavor {
            return Err(syn::Error::new_spanned(
                meta.path(),
                format!(
                    "set the runtime flavor with #[{}(flavor = \"{flavor}\")], as in tokio",
                    kind.name()
                ),
            ));
        }
        match meta {
            Meta::NameValue(nv) => pairs.push(nv),
            _ if !kind.valid().contains(&name.as_str()) => {
                return Err(unknown(meta.path(), &name, kind));
            }
            other => {
                let accepts =
                    key_named(&name).map_or(String::new(), |k| format!(": {}", k.accepts));
                return Err(syn::Error::new_spanned(
                    other,
                    format!("`{name}` takes a value, as `{name} = ...`{accepts}"),
                ));
            }
        }
    }
    Ok(pairs)
}

/// The setting of the argument `name` (what it accepts), where it has one: found by
/// the keys' own argument names.
fn key_named(name: &str) -> Option<Key> {
    let others = [START_PAUSED, CRATE, settings::RUNTIME_NAME];
    settings::KEYS
        .into_iter()
        .chain(others)
        .find(|key| key.argument == name)
}

/// The name of an argument, in lower case, as tokio reads it (`Flavor = ".."` is
/// `flavor`).
fn argument_name(path: &syn::Path) -> String {
    path.get_ident().map_or_else(
        || quote::quote!(#path).to_string().replace(' ', ""),
        |ident| ident.to_string().to_lowercase(),
    )
}

fn unknown(path: &syn::Path, name: &str, kind: Kind) -> syn::Error {
    syn::Error::new_spanned(
        path,
        format!(
            "unknown argument `{name}` of #[{}]; valid arguments are: {}",
            kind.name(),
            kind.valid().join(", ")
        ),
    )
}

impl Config {
    /// The default settings with the `crate` argument, where that one is well formed
    /// whatever else is wrong (a bare or unknown argument beside it too): the
    /// expansion made to report another error names the facade by it (a renamed
    /// facade would add errors of its own on `::coldstart`).
    pub(crate) fn default_in(args: proc_macro2::TokenStream) -> Config {
        Config {
            krate: crate_argument(args),
            ..Config::default()
        }
    }

    pub(crate) fn parse(args: proc_macro2::TokenStream, kind: Kind) -> syn::Result<Config> {
        let list = named_values(args, kind)?;
        let mut config = Config::default();
        let mut seen: Vec<String> = Vec::new();
        for nv in &list {
            let name = argument_name(&nv.path);
            if !kind.valid().contains(&name.as_str()) {
                return Err(unknown(&nv.path, &name, kind));
            }
            if seen.contains(&name) {
                return Err(syn::Error::new_spanned(
                    &nv.path,
                    format!("duplicate argument `{name}`"),
                ));
            }
            seen.push(name.clone());
            match name.as_str() {
                "flavor" => {
                    config.flavor = Some(value(nv, settings::FLAVOR, settings::parse_flavor)?)
                }
                "worker_threads" => {
                    config.worker_threads = Some(value(
                        nv,
                        settings::WORKER_THREADS,
                        settings::parse_workers,
                    )?)
                }
                "start_paused" => config.start_paused = Some(value(nv, START_PAUSED, parse_bool)?),
                "crate" => config.krate = Some(crate_path(nv)?),
                "name" => {
                    config.name = Some(value(nv, settings::RUNTIME_NAME, |s| {
                        settings::parse_runtime_name(s).map(str::to_owned)
                    })?)
                }
                "strategy" => {
                    config.strategy = Some(value(nv, settings::STRATEGY, settings::parse_strategy)?)
                }
                "max_blocking_threads" => {
                    config.max_blocking_threads = Some(value(
                        nv,
                        settings::MAX_BLOCKING_THREADS,
                        settings::parse_blocking,
                    )?)
                }
                "thread_stack_size" => {
                    config.thread_stack_size = Some(value(
                        nv,
                        settings::THREAD_STACK_SIZE,
                        settings::parse_stack_size,
                    )?)
                }
                "prewarm" => {
                    config.prewarm = Some(value(nv, settings::PREWARM, settings::parse_switch)?)
                }
                "profile" => match &nv.value {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(s), ..
                    }) => config.profile = Some(s.clone()),
                    other => {
                        return Err(syn::Error::new_spanned(
                            other,
                            format!(
                                "`profile` takes a path as a string, relative to the crate's Cargo.toml, got `{}`",
                                quote::quote!(#other)
                            ),
                        ));
                    }
                },
                _ => unreachable!("checked against the valid list above"),
            }
        }
        config.check(&list)?;
        Ok(config)
    }

    /// The combinations `#[tokio::main]` rejects, rejected the same way.
    fn check(&self, list: &Punctuated<MetaNameValue, Token![,]>) -> syn::Result<()> {
        let span_of = |name: &str| {
            list.iter()
                .find(|nv| argument_name(&nv.path) == name)
                .map_or_else(Span::call_site, |nv| syn::spanned::Spanned::span(&nv.path))
        };
        if self.flavor == Some(Flavor::CurrentThread) && self.worker_threads.is_some_and(|n| n != 1)
        {
            return Err(syn::Error::new(
                span_of("worker_threads"),
                "`worker_threads` needs the multi-thread scheduler; remove it or use flavor = \"multi_thread\"",
            ));
        }
        // A worker count without a flavor asks for the multi-thread scheduler too.
        let multi_thread = Flavor::of_test(self.flavor, self.worker_threads) == Flavor::MultiThread;
        if self.start_paused == Some(true) && multi_thread {
            return Err(syn::Error::new(
                span_of("start_paused"),
                "`start_paused` needs the current_thread scheduler, as in tokio",
            ));
        }
        // With `start_paused`, `main` runs on a test's runtime, which has no plan:
        // an argument for the plan would be ignored without a word.
        if self.start_paused == Some(true) {
            let planned = [
                ("strategy", self.strategy.is_some()),
                ("max_blocking_threads", self.max_blocking_threads.is_some()),
                ("thread_stack_size", self.thread_stack_size.is_some()),
                ("prewarm", self.prewarm.is_some()),
                ("profile", self.profile.is_some()),
            ];
            if let Some((name, _)) = planned.iter().find(|(_, given)| *given) {
                return Err(syn::Error::new(
                    span_of(name),
                    format!(
                        "`{name}` has no effect with `start_paused = true`, which runs the function on a test's runtime, without a plan; remove one of them"
                    ),
                ));
            }
        }
        Ok(())
    }
}

const START_PAUSED: Key = Key {
    argument: "start_paused",
    variable: "",
    accepts: "`true` or `false`",
};
const CRATE: Key = Key {
    argument: "crate",
    variable: "",
    accepts: "a path as a string, e.g. \"::coldstart\"",
};

/// The `crate = "..."` path among `args`, where it is well formed whatever else is
/// wrong with them (a bare, unknown or refused argument beside it): what an expansion
/// made to report another error names the facade by, for `main`, `test` and `init`.
pub(crate) fn crate_argument(args: proc_macro2::TokenStream) -> Option<syn::Path> {
    let list = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(args)
        .ok()?;
    list.into_iter().find_map(|meta| match meta {
        Meta::NameValue(nv) if argument_name(&nv.path) == "crate" => crate_path(&nv).ok(),
        _ => None,
    })
}

/// The `crate` argument's path, spanned at its string: a path that does not resolve
/// is said there, not on the whole attribute.
fn crate_path(nv: &MetaNameValue) -> syn::Result<syn::Path> {
    match &nv.value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => s.parse().map_err(|_| {
            syn::Error::new_spanned(s, format!("`crate` takes a path, got `{}`", s.value()))
        }),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`crate` takes {}, got `{}`",
                CRATE.accepts,
                quote::quote!(#other)
            ),
        )),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}
