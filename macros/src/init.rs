//! `#[coldstart::init]`: keeps the item and adds one `linkme` registration beside it.
//!
//! A function stays as written; a static's type becomes `coldstart::Lazy<T>` with the
//! expression as its initialiser. Everything else happens in
//! `coldstart_bootstrap::init` and `coldstart_runtime`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

use crate::expand::with_error;
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Item, Lit, Meta, Token};

const VALID: &str = "critical, deferred, fatal, name = \"...\", crate = \"...\"";

#[derive(Default)]
struct Args {
    phase: Option<(&'static str, syn::Ident)>,
    fatal: Option<syn::Ident>,
    name: Option<syn::LitStr>,
    krate: Option<syn::Path>,
}

fn string(expr: &Expr, key: &str) -> syn::Result<syn::LitStr> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        _ => Err(syn::Error::new_spanned(
            expr,
            format!(
                "`{key}` takes a string literal, got `{}`",
                quote::quote!(#expr)
            ),
        )),
    }
}

impl Args {
    fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let list = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
        let mut args = Args::default();
        let mut seen = Vec::new();
        for meta in &list {
            let path = meta.path();
            let Some(ident) = path.get_ident() else {
                return Err(syn::Error::new_spanned(
                    path,
                    format!(
                        "arguments of #[coldstart::init] are plain names; valid arguments are: {VALID}"
                    ),
                ));
            };
            // Names as written: tokio has no `init` whose arguments a rename must keep
            // (`main` and `test` read theirs in any case, as tokio does).
            let key = ident.to_string();
            if seen.contains(&key) {
                return Err(syn::Error::new_spanned(
                    path,
                    format!("duplicate argument `{key}`"),
                ));
            }
            seen.push(key.clone());
            match (key.as_str(), meta) {
                ("critical" | "deferred", Meta::Path(p)) => {
                    if let Some((_, other)) = &args.phase {
                        return Err(syn::Error::new_spanned(
                            p,
                            format!(
                                "`{key}` contradicts `{other}`: give one phase, or none to let the profile decide"
                            ),
                        ));
                    }
                    args.phase = Some((
                        if key == "critical" {
                            "Critical"
                        } else {
                            "Deferred"
                        },
                        ident.clone(),
                    ));
                }
                ("fatal", Meta::Path(_)) => args.fatal = Some(ident.clone()),
                ("name", Meta::NameValue(nv)) => {
                    let lit = string(&nv.value, "name")?;
                    check_name(&lit)?;
                    args.name = Some(lit);
                }
                ("crate", Meta::NameValue(nv)) => {
                    let lit = string(&nv.value, "crate")?;
                    args.krate = Some(lit.parse().map_err(|_| {
                        syn::Error::new_spanned(
                            &lit,
                            format!("`crate` takes a path, got `{}`", lit.value()),
                        )
                    })?);
                }
                ("critical" | "deferred" | "fatal", _) => {
                    return Err(syn::Error::new_spanned(
                        meta,
                        format!("`{key}` takes no value"),
                    ));
                }
                ("name" | "crate", _) => {
                    return Err(syn::Error::new_spanned(
                        meta,
                        format!("`{key}` takes a string: {key} = \"...\""),
                    ));
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        path,
                        format!(
                            "unknown argument `{key}` of #[coldstart::init]; valid arguments are: {VALID}"
                        ),
                    ));
                }
            }
        }
        if let (Some(fatal), Some(("Critical", _))) = (&args.fatal, &args.phase) {
            return Err(syn::Error::new_spanned(
                fatal,
                "`fatal` is for work after the first response; a failing critical init always stops start-up",
            ));
        }
        Ok(args)
    }
}

/// Names are written one per line in profiles, after the other fields, and shown in
/// reports: a name must read as it prints.
fn check_name(lit: &syn::LitStr) -> syn::Result<()> {
    use coldstart_bootstrap::plan::settings::{OneLine, invisible};
    let name = lit.value();
    let fault = if name.is_empty() {
        "is empty"
    } else if name.trim() != name {
        "has leading or trailing spaces"
    } else if name.chars().any(char::is_control) {
        "is not on one line (it holds a control character)"
    } else if name.chars().any(invisible) {
        "holds a character that shows nothing (a zero-width or direction mark)"
    } else {
        return Ok(());
    };
    Err(syn::Error::new_spanned(
        lit,
        format!(
            "`name` {fault}: give a name that prints as it reads, on one line, without leading or trailing spaces; got `{}`",
            OneLine(&name)
        ),
    ))
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: Item = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) => return with_error(item, e),
    };
    // A static stays the `Lazy` it would be, unregistered: what reads it (`*CONFIG`)
    // still compiles, and the error is the only one said (not E0015 on a non-const
    // initialiser and E0614 at every read).
    let unregistered =
        unregistered_static(&parsed, &crate_of(&args)).unwrap_or_else(|| item.clone());
    let args = match Args::parse(args) {
        Ok(a) => a,
        Err(e) => return with_error(unregistered, e),
    };
    match registration(&args, parsed) {
        Ok(tokens) => tokens,
        Err(e) => with_error(unregistered, e),
    }
}

/// A static as the registration makes it (`coldstart::Lazy<T>` of the crate `krate`),
/// without the registration; `None` for anything else, and for a `static mut`, which
/// is refused.
fn unregistered_static(item: &Item, krate: &TokenStream) -> Option<TokenStream> {
    let Item::Static(s) = item else {
        return None;
    };
    if !matches!(s.mutability, syn::StaticMutability::None) {
        return None;
    }
    let ident = s.ident.unraw().to_string();
    let name = quote!(::core::concat!(::core::module_path!(), "::", #ident));
    Some(lazy_static(s, &quote!(#krate::__private::v1), &name))
}

/// The `crate = "..."` path among arguments that may be refused otherwise, so that
/// the static made under their error names the crate it names; else `::coldstart`.
fn crate_of(args: &TokenStream) -> TokenStream {
    crate::config::crate_argument(args.clone()).map_or_else(|| quote!(::coldstart), |p| quote!(#p))
}

/// `s` as a `Lazy<T>` static named `name` in the profile.
fn lazy_static(s: &syn::ItemStatic, v1: &TokenStream, name: &TokenStream) -> TokenStream {
    let syn::ItemStatic {
        attrs,
        vis,
        ident,
        ty,
        expr,
        ..
    } = s;
    quote! {
        #(#attrs)*
        #vis static #ident: #v1::Lazy<#ty> = #v1::Lazy::new(#name, || #expr);
    }
}

/// `#[coldstart::init]` again on the item, as `coldstart::init` or through the
/// `crate` argument's path: it would register the item twice, and make a static's
/// type `Lazy<Lazy<T>>`. (A bare `#[init]` may be another crate's.)
fn second_init<'a>(item: &'a Item, krate: Option<&syn::Path>) -> Option<&'a syn::Attribute> {
    let attrs = match item {
        Item::Fn(f) => &f.attrs,
        Item::Static(s) => &s.attrs,
        _ => return None,
    };
    let facade = krate
        .and_then(|p| p.segments.last())
        .map_or_else(|| "coldstart".to_owned(), |s| s.ident.to_string());
    attrs.iter().find(|a| {
        let segments = &a.path().segments;
        segments.len() > 1
            && segments.last().is_some_and(|s| s.ident == "init")
            && segments[segments.len() - 2].ident == facade
    })
}

fn registration(args: &Args, item: Item) -> syn::Result<TokenStream> {
    if let Some(again) = second_init(&item, args.krate.as_ref()) {
        return Err(syn::Error::new_spanned(
            again,
            "#[coldstart::init] is given twice on this item; one registers it",
        ));
    }
    let krate = args
        .krate
        .clone()
        .map_or_else(|| quote!(::coldstart), |p| quote!(#p));
    let v1 = quote!(#krate::__private::v1);
    let (ident, item, work) = match item {
        Item::Fn(f) => {
            // A function the profile cannot move: without `deferred` it runs before
            // serving, where a failure always stops start-up.
            if let (Some(fatal), None | Some(("Critical", _))) = (&args.fatal, &args.phase) {
                return Err(syn::Error::new_spanned(
                    fatal,
                    "`fatal` is for work after the first response: give `deferred` too (a function without it runs before serving, where a failure always stops start-up)",
                ));
            }
            if !f.sig.inputs.is_empty() || !f.sig.generics.params.is_empty() {
                return Err(syn::Error::new_spanned(
                    &f.sig,
                    "#[coldstart::init] registers functions without arguments or generics",
                ));
            }
            // The runner calls it as plain code: an `unsafe fn` would fail there, at
            // a call the program cannot see or change.
            if let Some(unsafety) = &f.sig.unsafety {
                return Err(syn::Error::new_spanned(
                    unsafety,
                    "#[coldstart::init] cannot call an `unsafe fn`: register a safe function that calls it in an `unsafe` block, saying why that is sound",
                ));
            }
            let ident = f.sig.ident.clone();
            // The call spanned at the return type: a type that is no init outcome is
            // said there, not at the attribute.
            let at = match &f.sig.output {
                syn::ReturnType::Type(_, ty) => ty.span(),
                syn::ReturnType::Default => ident.span(),
            };
            let mut callee = ident.clone();
            callee.set_span(at);
            let work = if f.sig.asyncness.is_some() {
                let sent = quote_spanned!(ident.span()=> #v1::init_future_must_be_send);
                let call = quote_spanned!(at=> #sent(#callee()).await);
                quote!(#v1::Work::Async(|| ::std::boxed::Box::pin(async {
                    #v1::InitOutput::into_outcome(#call)
                })))
            } else {
                let call = quote_spanned!(at=> #callee());
                quote!(#v1::Work::Fn(|| #v1::InitOutput::into_outcome(#call)))
            };
            (ident, quote!(#f), work)
        }
        Item::Static(s) => {
            if !matches!(s.mutability, syn::StaticMutability::None) {
                return Err(syn::Error::new_spanned(
                    &s.mutability,
                    "#[coldstart::init] statics cannot be `mut`",
                ));
            }
            let item = lazy_static(&s, &v1, &name(args, &s.ident));
            let ident = s.ident;
            let work = quote!(#v1::Work::Static(&#ident));
            (ident, item, work)
        }
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "#[coldstart::init] goes on a `fn`, an `async fn` or a `static`",
            ));
        }
    };
    let name = name(args, &ident);
    let declared = format_ident!("{}", args.phase.as_ref().map_or("Auto", |(p, _)| *p));
    let fatal = args.fatal.is_some();
    // The item's own spelling, without `r#`: a raw identifier cannot be glued to a
    // prefix, and changing the case would let `fn config` and `static CONFIG` clash.
    let element = format_ident!("__COLDSTART_INIT_{}", ident.unraw());
    Ok(quote! {
        #item
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[#v1::linkme::distributed_slice(#v1::INITS)]
        #[linkme(crate = #v1::linkme)]
        static #element: #v1::Registration =
            #v1::Registration::new(#name, #v1::Declared::#declared, #fatal, #work);
    })
}

fn name(args: &Args, ident: &syn::Ident) -> TokenStream {
    match &args.name {
        Some(lit) => quote!(#lit),
        None => {
            let ident = ident.unraw().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    }
}
