//! The init profile (`coldstart.profile`): any text parses or is refused with a line
//! number, and a profile that parses survives writing and reading back unchanged.
#![no_main]

use coldstart_bootstrap::init::Profile;

libfuzzer_sys::fuzz_target!(|text: &str| {
    match Profile::parse(text) {
        Ok(profile) => {
            let written = profile.to_string();
            let again = Profile::parse(&written)
                .unwrap_or_else(|e| panic!("a written profile is refused: {e}\n{written}"));
            assert_eq!(again.to_string(), written);
        }
        Err(e) => assert!(e.to_string().contains("line"), "{e}"),
    }
});
