//! The expansion: a few lines that call `__private::v1` of the facade.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::ItemFn;

use crate::config::{Config, Kind};
use coldstart_bootstrap::{Flavor, Strategy};

pub(crate) fn entry(args: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        // Not a function: let rustc report it on the original tokens.
        Err(e) => return with_error(item, e),
    };
    if func.sig.asyncness.is_none() {
        let err = syn::Error::new_spanned(
            func.sig.fn_token,
            format!(
                "the `async` keyword is missing from the function declaration (#[{}] runs an async fn)",
                kind.name()
            ),
        );
        return with_error(quote!(#func), err);
    }
    // Wrong uses of a function that is otherwise fine: said, and the function still
    // expanded as usual (with the default settings), so that its body type-checks as
    // an async body and rustc adds no errors of its own about it (an `.await` outside
    // `async`), as `#[tokio::main]` does.
    let wrong_use = wrong_use(&mut func, kind);
    let defaults = || Config::default_in(args.clone());
    let (config, mut error) = match (wrong_use, Config::parse(args.clone(), kind)) {
        (None, Ok(c)) => (c, None),
        // Expand with defaults (in the facade `crate` names) so the body still
        // type-checks, and report the errors.
        (Some(mut e), Err(refused)) => {
            e.combine(refused);
            (defaults(), Some(e.to_compile_error()))
        }
        (Some(e), Ok(_)) | (None, Err(e)) => (defaults(), Some(e.to_compile_error())),
    };
    func.sig.asyncness = None;
    let call = call(&config, &func, kind, &mut error);
    let block = block(&func, kind, &config, call);
    let test_attr = (kind == Kind::Test).then(|| quote!(#[::core::prelude::v1::test]));
    // syn keeps the body's inner attributes (`#![allow(...)]`) with the outer ones:
    // they go back at the top of the body, where they were (see [`block`]).
    let attrs = func
        .attrs
        .iter()
        .filter(|a| !matches!(a.style, syn::AttrStyle::Inner(_)));
    let vis = &func.vis;
    let sig = &func.sig;
    // `#[test]` after the function's own attributes, as tokio puts it: a test macro
    // below this one (one that adds `#[test]` when it sees none) runs on what this
    // gives, so it sees this one and adds no second.
    quote! {
        #error
        #(#attrs)*
        #test_attr
        #vis #sig #block
    }
}

/// The first wrong use of a function that is otherwise fine, if any; a second test
/// attribute is taken out.
fn wrong_use(func: &mut ItemFn, kind: Kind) -> Option<syn::Error> {
    let mut wrong_use = None;
    // A `const async fn` would reach rustc as a `const fn` that starts a runtime.
    if let Some(constness) = func.sig.constness.take() {
        wrong_use = Some(syn::Error::new_spanned(
            constness,
            format!(
                "#[{}] runs a function at run time; remove `const`",
                kind.name()
            ),
        ));
    }
    // As `#[tokio::main]`: another function may take arguments (its body captures
    // them), `main` may not.
    if kind == Kind::Main && func.sig.ident == "main" && !func.sig.inputs.is_empty() {
        wrong_use.get_or_insert(syn::Error::new_spanned(
            &func.sig.inputs,
            "#[coldstart::main] takes a function without arguments",
        ));
    }
    // As `#[tokio::test]`: a second test attribute would run the test twice.
    if kind == Kind::Test
        && let Some(at) = func.attrs.iter().position(is_test_attribute)
    {
        let test = func.attrs.remove(at);
        wrong_use.get_or_insert(syn::Error::new_spanned(
            test,
            "a second test attribute is given; #[coldstart::test] adds `#[test]` itself, so remove this one",
        ));
    }
    wrong_use
}

/// The call that runs the body (`__coldstart_body`) on the runtime, with the
/// settings `config` gives; an error found on the way (a profile that cannot be
/// embedded) is added to `error`, and the call made without it.
fn call(
    config: &Config,
    func: &ItemFn,
    kind: Kind,
    error: &mut Option<TokenStream>,
) -> TokenStream {
    let v1 = v1(config);
    let start_paused = config.start_paused.unwrap_or(false);
    let flavor = opt(config.flavor.map(|f| flavor_tokens(&v1, f)));
    let workers = opt(config.worker_threads.map(|n| quote!(#n)));
    let name = opt(config.name.as_ref().map(|n| quote!(#n)));
    match kind {
        Kind::Main => {
            // What describes the body's output, for Lambda's init error: the type named,
            // so that an `Err` is found where the type is known. A type that cannot
            // be named in a closure's parameter (`impl Trait`, `!`, `_`) is not.
            let describe = match &func.sig.output {
                syn::ReturnType::Default => describe_as(&v1, &quote!(())),
                syn::ReturnType::Type(_, ty) if nameable(&quote!(#ty)) => {
                    describe_as(&v1, &quote!(#ty))
                }
                syn::ReturnType::Type(..) => quote!(|_| ::core::option::Option::None),
            };
            let strategy = opt(config.strategy.map(|s| strategy_tokens(&v1, s)));
            let blocking = opt(config.max_blocking_threads.map(|n| quote!(#n)));
            let stack = opt(config.thread_stack_size.map(|n| quote!(#n)));
            let prewarm = opt(config.prewarm.map(|b| quote!(#b)));
            let profile = match chosen_profile(config.profile.as_ref()) {
                Ok(p) => opt(p),
                Err(e) => {
                    // Report it, and expand without the profile so the body type-checks.
                    let e = e.to_compile_error();
                    *error = Some(quote!(#error #e));
                    opt(None)
                }
            };
            // Makes rustc record the variable, so cargo rebuilds when it changes.
            let profile = quote!({
                let _ = ::core::option_env!(#EMBED_VARIABLE);
                #profile
            });
            quote! {
                #v1::block_on(
                    &#v1::Settings {
                        strategy: #strategy,
                        flavor: #flavor,
                        worker_threads: #workers,
                        max_blocking_threads: #blocking,
                        thread_stack_size: #stack,
                        prewarm: #prewarm,
                        init_profile: #profile,
                        service_version: ::core::option_env!("CARGO_PKG_VERSION"),
                        name: #name,
                    },
                    #start_paused,
                    __coldstart_body,
                    #describe,
                )
            }
        }
        Kind::Test => {
            quote! { #v1::block_on_test(#flavor, #workers, #start_paused, #name, __coldstart_body) }
        }
    }
}

/// `__private::v1` of the facade `config`'s `crate` names, else `::coldstart`'s.
fn v1(config: &Config) -> TokenStream {
    let krate = config
        .krate
        .clone()
        .map_or_else(|| quote!(::coldstart), |p| quote!(#p));
    quote!(#krate::__private::v1)
}

/// The function's new body: its own body made into `__coldstart_body`, then `call`.
fn block(func: &ItemFn, kind: Kind, config: &Config, call: TokenStream) -> TokenStream {
    let v1 = v1(config);
    let start_paused = config.start_paused.unwrap_or(false);
    let body = &func.block;
    let sig = &func.sig;
    let inner = func
        .attrs
        .iter()
        .filter(|a| matches!(a.style, syn::AttrStyle::Inner(_)));
    let span = body.brace_token.span.join();
    let paused_check =
        (start_paused).then(|| quote!(const _: () = #v1::start_paused_is_available();));
    // Named in the attribute's context, as `#call` names it: written in the body's,
    // it would not be the same variable where the two contexts differ (the attribute
    // written by a `macro_rules!` macro around a body its caller gives).
    // A name of its own, as the describing closure's: a constant named `body` where
    // the function is would make `let body` a pattern.
    let body_var = syn::Ident::new("__coldstart_body", proc_macro2::Span::call_site());
    // The body is given the function's return type: a body, or a `return` in it,
    // that does not match it is then an error on the body's lines, not on the
    // attribute (where the runtime's call would find it, as tokio#4636 and tokio#6930
    // say of their own). Where nothing ties the body to the function (`main` and
    // tests that take nothing: free functions, so no generic of an `impl` around
    // them can be named in the body, which a nested function could not see), it
    // becomes an `async fn` of its own with that return type, so that a `return` is
    // checked and coerced as in any `async fn` (`return Err(Box::new(e))` in a
    // `-> Result<(), Box<dyn Error>>`). Else (arguments, generics, `Self`, another
    // function) an `async` block whose value is given the type where it can be named.
    let free = kind == Kind::Test || sig.ident == "main";
    if free && standalone(sig, body) {
        let output = &sig.output;
        let body_fn = syn::Ident::new("__coldstart_main", proc_macro2::Span::call_site());
        // The function's own parentheses: a compiler's "add a return type" lands
        // after them, where the return type goes.
        let mut parens =
            proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, TokenStream::new());
        parens.set_span(sig.paren_token.span.join());
        quote_spanned! {span=>
            {
                #(#inner)*
                #paused_check
                // Its lints are the body's: a test with no `.await` is no mistake.
                #[allow(clippy::unused_async, clippy::future_not_send)]
                async fn #body_fn #parens #output #body
                let #body_var = #body_fn();
                #call
            }
        }
    } else {
        let body = match &sig.output {
            syn::ReturnType::Default => {
                quote!({ let __coldstart_value: () = #body; __coldstart_value })
            }
            syn::ReturnType::Type(_, ty) if nameable(&quote!(#ty)) => {
                quote!({ let __coldstart_value: #ty = #body; __coldstart_value })
            }
            syn::ReturnType::Type(..) => quote!(#body),
        };
        quote_spanned! {span=>
            {
                #(#inner)*
                #paused_check
                let #body_var = async move #body;
                #call
            }
        }
    }
}

/// A closure that describes an output of type `ty`: an `Err`'s text (see the facade's
/// `__private::v1::Describe`).
fn describe_as(v1: &TokenStream, ty: &TokenStream) -> TokenStream {
    // Names of its own: a program's `describe` method on every type, or a constant
    // named `output`, in scope where `main` is, would be found instead.
    quote! {
        |__coldstart_output: &#ty| {
            use #v1::{DescribeError as _, DescribeOther as _};
            (&&#v1::Describe(__coldstart_output)).__coldstart_describe()
        }
    }
}

/// Whether the body can be a function of its own: the function takes nothing, is
/// generic over nothing, is a plain safe Rust function, and neither its body nor its
/// return type names `Self` (which a nested function does not see).
fn standalone(sig: &syn::Signature, body: &syn::Block) -> bool {
    sig.inputs.is_empty()
        && sig.generics.params.is_empty()
        && sig.generics.where_clause.is_none()
        && sig.unsafety.is_none()
        && sig.abi.is_none()
        && sig.variadic.is_none()
        && !names_self(quote!(#body), true)
        && !names_self(sig.output.to_token_stream(), false)
}

/// Whether `tokens` name the `Self` of the item around them. In a body (`items`), an
/// item declared there (`impl`, `trait`, `struct`, `enum`, `mod`, a named `fn`) is
/// passed over up to its end (its braces, or its `;`): a `Self` in it is its own, or
/// one no nested item may name. In a type (`-> impl Into<Self>`) every `Self` counts.
fn names_self(tokens: TokenStream, items: bool) -> bool {
    use proc_macro2::{Delimiter, TokenTree};
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(i) if i == "Self" => return true,
            TokenTree::Ident(i)
                if items
                    && (i == "impl"
                    || i == "trait"
                    || i == "struct"
                    || i == "enum"
                    // `fn(u8) -> Self` is a type, `fn name` an item.
                    || ((i == "fn" || i == "mod")
                        && matches!(tokens.peek(), Some(TokenTree::Ident(_))))) =>
            {
                for token in tokens.by_ref() {
                    match token {
                        TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => break,
                        TokenTree::Punct(p) if p.as_char() == ';' => break,
                        _ => {}
                    }
                }
            }
            TokenTree::Group(g) if names_self(g.stream(), items) => return true,
            _ => {}
        }
    }
    false
}

/// Whether a type can be written as a closure's parameter type: it holds no `impl`,
/// `!` or `_`.
fn nameable(ty: &TokenStream) -> bool {
    ty.clone().into_iter().all(|token| match token {
        proc_macro2::TokenTree::Ident(i) => i != "impl" && i != "_",
        proc_macro2::TokenTree::Punct(p) => p.as_char() != '!',
        proc_macro2::TokenTree::Group(g) => nameable(&g.stream()),
        proc_macro2::TokenTree::Literal(_) => true,
    })
}

/// `#[test]`, `#[core::prelude::v1::test]` and the like.
fn is_test_attribute(attr: &syn::Attribute) -> bool {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    match segments.as_slice() {
        [test] => test == "test",
        [krate, .., test] => (krate == "core" || krate == "std") && test == "test",
        [] => false,
    }
}

fn opt(tokens: Option<TokenStream>) -> TokenStream {
    match tokens {
        Some(t) => quote!(::core::option::Option::Some(#t)),
        None => quote!(::core::option::Option::None),
    }
}

fn flavor_tokens(v1: &TokenStream, f: Flavor) -> TokenStream {
    match f {
        Flavor::CurrentThread => quote!(#v1::Flavor::CurrentThread),
        Flavor::MultiThread => quote!(#v1::Flavor::MultiThread),
    }
}

fn strategy_tokens(v1: &TokenStream, s: Strategy) -> TokenStream {
    match s {
        Strategy::Minimal => quote!(#v1::Strategy::Minimal),
        Strategy::Balanced => quote!(#v1::Strategy::Balanced),
        Strategy::Throughput => quote!(#v1::Strategy::Throughput),
    }
}

/// The item as written, after the error: the IDE keeps working on it.
pub(crate) fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#error #item)
}

/// The compile-time variable naming an init profile to embed in every
/// `#[coldstart::main]` of the build; `cargo coldstart build` sets it. It wins over the
/// `profile` argument, as the environment wins over code everywhere else.
const EMBED_VARIABLE: &str = "COLDSTART_EMBED_PROFILE";

/// The profile to embed: the one `COLDSTART_EMBED_PROFILE` names, else the argument's.
fn chosen_profile(argument: Option<&syn::LitStr>) -> syn::Result<Option<TokenStream>> {
    match std::env::var(EMBED_VARIABLE) {
        Ok(path) if !path.is_empty() => {
            let span = argument.map_or_else(proc_macro2::Span::call_site, syn::LitStr::span);
            embed_profile(&path, &format!("{EMBED_VARIABLE}={path}"), span).map(Some)
        }
        // Not passed over for the argument's, or none: the build asked for this one.
        Err(std::env::VarError::NotUnicode(path)) => Err(syn::Error::new(
            argument.map_or_else(proc_macro2::Span::call_site, syn::LitStr::span),
            format!(
                "{EMBED_VARIABLE}={} is not UTF-8, which the attribute cannot embed; name a profile whose path is",
                path.to_string_lossy()
            ),
        )),
        _ => argument
            .map(|lit| embed_profile(&lit.value(), &format!("`{}`", lit.value()), lit.span()))
            .transpose(),
    }
}

/// Checks the profile now (a bad file is a compile error naming the line) and embeds
/// it with `include_str!`, which also makes cargo rebuild when the file changes.
/// `path` is relative to the crate's Cargo.toml unless absolute.
fn embed_profile(path: &str, what: &str, span: proc_macro2::Span) -> syn::Result<TokenStream> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // Absolute: `include_str!` reads a relative path from the source file's directory,
    // not from where this read it (without cargo, the working directory).
    let full = std::path::absolute(std::path::Path::new(&dir).join(path)).map_err(|e| {
        syn::Error::new(span, format!("cannot resolve the init profile {what}: {e}"))
    })?;
    // A FIFO or device would hold or fill the compiler.
    let text = coldstart_bootstrap::init::profile::read_file(&full).map_err(|e| {
        syn::Error::new(
            span,
            format!("cannot read the init profile {what} (relative to Cargo.toml): {e}"),
        )
    })?;
    coldstart_bootstrap::init::Profile::parse(&text)
        .map_err(|e| syn::Error::new(span, format!("init profile {what} {e}")))?;
    let full = full.to_string_lossy().into_owned();
    Ok(quote!(::core::include_str!(#full)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_profile_is_an_error_naming_its_line() {
        let path =
            std::env::temp_dir().join(format!("coldstart-macro-{}.profile", std::process::id()));
        std::fs::write(
            &path,
            "coldstart-profile 1\n\nneeded 1 fn a\nlater x fn b\n",
        )
        .ok();
        // An absolute path stays as it is when joined to the manifest directory.
        let shown = format!("`{}`", path.display());
        let error = embed_profile(
            &path.to_string_lossy(),
            &shown,
            proc_macro2::Span::call_site(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        std::fs::remove_file(&path).ok();
        assert_eq!(
            error,
            format!(
                "init profile `{}` line 4: expected the duration in whole microseconds, got `x`",
                path.display()
            )
        );
    }

    /// A wrong use reported beside a `crate` argument still expands in the facade it
    /// names: `::coldstart` would not resolve where the facade is renamed, and add
    /// errors of its own on the attribute.
    #[test]
    fn a_wrong_use_keeps_the_crate_argument() {
        let cases = [
            (
                quote!(crate = "cs"),
                quote!(
                    async fn main(port: u16) {}
                ),
            ),
            (
                quote!(crate = "cs", worker_threads = 0),
                quote!(
                    async fn main() {}
                ),
            ),
            (
                quote!(crate = "cs", multi_thread),
                quote!(
                    async fn main() {}
                ),
            ),
            (
                quote!(crate = "cs", unknown = 1),
                quote!(
                    async fn main() {}
                ),
            ),
        ];
        for (args, item) in cases {
            let out = entry(args.clone(), item, Kind::Main).to_string();
            assert!(out.contains("compile_error"), "{args}: {out}");
            assert!(out.contains("cs :: __private :: v1"), "{args}: {out}");
            assert!(!out.contains(":: coldstart ::"), "{args}: {out}");
        }
        let test = entry(
            quote!(crate = "cs"),
            quote!(
                #[test]
                async fn t() {}
            ),
            Kind::Test,
        )
        .to_string();
        assert!(
            test.contains("cs :: __private :: v1") && !test.contains(":: coldstart ::"),
            "{test}"
        );
    }
}
