//! Attribute arguments, parsed and checked. Value parsing is shared with the
//! `COLDSTART_*` variables (coldstart-bootstrap), so both accept the same values.

use coldstart_bootstrap::plan::settings::{self, Key};
use coldstart_bootstrap::{Flavor, Strategy};
use proc_macro2::Span;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, MetaNameValue, Token};

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
                "strategy",
                "max_blocking_threads",
                "thread_stack_size",
                "prewarm",
                "profile",
            ],
            Kind::Test => &["flavor", "worker_threads", "start_paused", "crate"],
        }
    }
}

#[derive(Default)]
pub(crate) struct Config {
    pub(crate) flavor: Option<Flavor>,
    pub(crate) worker_threads: Option<usize>,
    pub(crate) start_paused: Option<bool>,
    pub(crate) krate: Option<syn::Path>,
    pub(crate) strategy: Option<Strategy>,
    pub(crate) max_blocking_threads: Option<usize>,
    pub(crate) thread_stack_size: Option<usize>,
    pub(crate) prewarm: Option<bool>,
    pub(crate) profile: Option<syn::LitStr>,
}

fn literal_text(expr: &Expr) -> Option<String> {
    match expr {
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
            _ => None,
        },
        _ => None,
    }
}

fn value<T>(nv: &MetaNameValue, key: Key, parse: fn(&str) -> Option<T>) -> syn::Result<T> {
    let text = literal_text(&nv.value).ok_or_else(|| {
        syn::Error::new_spanned(
            &nv.value,
            format!("`{}` takes a literal: {}", key.argument, key.accepts),
        )
    })?;
    key.parse_argument(&text, parse)
        .map_err(|e| syn::Error::new_spanned(&nv.value, e.to_string()))
}

impl Config {
    pub(crate) fn parse(args: proc_macro2::TokenStream, kind: Kind) -> syn::Result<Config> {
        let list = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
        let mut config = Config::default();
        let mut seen: Vec<String> = Vec::new();
        for nv in &list {
            let path = &nv.path;
            let name = path.get_ident().map_or_else(
                || quote::quote!(#path).to_string().replace(' ', ""),
                ToString::to_string,
            );
            if !kind.valid().contains(&name.as_str()) {
                return Err(syn::Error::new_spanned(
                    &nv.path,
                    format!(
                        "unknown argument `{name}` of #[{}]; valid arguments are: {}",
                        kind.name(),
                        kind.valid().join(", ")
                    ),
                ));
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
                "crate" => {
                    let text = value(nv, CRATE, |s| Some(s.to_owned()))?;
                    config.krate = Some(syn::parse_str(&text).map_err(|_| {
                        syn::Error::new_spanned(
                            &nv.value,
                            format!("`crate` takes a path, got `{text}`"),
                        )
                    })?);
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
                            "`profile` takes a path as a string, relative to the crate's Cargo.toml",
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
                .find(|nv| nv.path.is_ident(name))
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

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}
