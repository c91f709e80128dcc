/*!
The `#[coldstart::main]` and `#[coldstart::test]` attributes. Use them through the
`coldstart` crate, which documents them.

This crate only parses arguments into a `config::Config` (rejecting unknown and
duplicate keys and bad values with errors spanned on the offending token) and expands
to a few lines that call `::coldstart::__private::v1`. All real logic is ordinary Rust
in the other crates. On a bad attribute it still emits the function, plus
`compile_error!`, so an IDE keeps working.
*/
#![warn(missing_docs, unreachable_pub)]

mod config;
mod expand;
mod init;

use proc_macro::TokenStream;

/// A drop-in for `#[tokio::main]`. See the `coldstart` crate.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(args.into(), item.into(), config::Kind::Main).into()
}

/// A drop-in for `#[tokio::test]`. See the `coldstart` crate.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(args.into(), item.into(), config::Kind::Test).into()
}

/// Registers start-up work. See the `coldstart` crate.
#[proc_macro_attribute]
pub fn init(args: TokenStream, item: TokenStream) -> TokenStream {
    init::expand(args.into(), item.into()).into()
}
