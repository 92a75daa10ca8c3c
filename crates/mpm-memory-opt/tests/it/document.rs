use mpm_memory_opt::{Document, ParseError};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_round_trip_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        match Document::parse(&bytes) {
            Ok(doc) => prop_assert_eq!(doc.render().into_bytes(), bytes),
            Err(ParseError::InvalidUtf8 { offset, .. }) => {
                prop_assert!(std::str::from_utf8(&bytes).is_err());
                prop_assert_eq!(std::str::from_utf8(&bytes).unwrap_err().valid_up_to(), offset);
            }
            Err(ParseError::Binary { offset, .. }) => prop_assert_eq!(bytes[offset], 0),
        }
    }

    #[test]
    fn memory_like_text_round_trips(parts in proptest::collection::vec(
        prop_oneof![
            Just("## Recent Learnings\n".to_owned()), Just("## Recent Learnings (v2)\r\n".to_owned()),
            Just("- item\n".to_owned()), Just("  - nested\r\n".to_owned()), Just("<!-- c -->\n".to_owned()),
            Just("\n".to_owned()), Just("\r".to_owned()), Just("\u{feff}".to_owned()), Just("## (untitled)\n".to_owned()),
            "[ -~é日\t]{0,20}",
        ], 0..30)) {
        let text: String = parts.concat();
        let doc = Document::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(doc.render(), text);
    }
}

#[test]
fn both_layouts_parse_into_sections() {
    let sectioned = "# Engineer Agent Memory - p\n\n<!-- MEMORY LIMITS: 80KB max -->\n\n## Project Context\np: x\n\n## Recent Learnings (v2)\n- a\n  - sub\n";
    let doc = Document::parse(sectioned.as_bytes()).unwrap();
    let names: Vec<_> = doc.sections().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["Project Context", "Recent Learnings"]);
    assert_eq!(doc.header(), 0..4);
    let flat = "# Engineer Agent Memory\nLast Updated: 2025-01-01\n\n## Learnings\n- a\n- b";
    let doc = Document::parse(flat.as_bytes()).unwrap();
    assert_eq!(doc.sections()[0].name, "Learnings");
    assert_eq!(doc.render(), flat);
}

#[test]
fn errors_say_what_is_wrong() {
    let e = Document::parse(b"# t\n\xc3\x28").unwrap_err();
    assert_eq!(
        e.to_string(),
        "not valid UTF-8 at byte 4 (line 2): memory files are UTF-8 text"
    );
}
