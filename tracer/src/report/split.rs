//! A document split into its top-level fields and its events, without parsing the events
//! (the parser threads do that).

use std::io::Read;

use super::scan::Scanner;

/// What the document is made of, as the scanner finds it.
pub(super) enum Item<'a> {
    /// A top-level field other than the events: its name and whole value.
    Field(&'a str, &'a [u8]),
    /// The events array begins.
    Events,
    /// One element of the events array.
    Event(&'a [u8]),
}

/// Splits the document into its fields and its events' elements.
pub(super) fn read_document<R: Read>(
    sc: &mut Scanner<R>,
    on: &mut dyn FnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    sc.expect(b'{', "an object")?;
    if sc.peek()? == Some(b'}') {
        sc.one_of(b"}", "'}'")?;
    } else {
        loop {
            if sc.peek()? != Some(b'"') {
                return Err(sc.error("a field name").into());
            }
            let key: String = serde_json::from_slice(sc.value()?)
                .map_err(|e| anyhow::anyhow!("not valid JSON: a field name: {e}"))?;
            sc.expect(b':', "':'")?;
            if key == "events" {
                on(Item::Events)?;
                sc.expect(b'[', "the events array")?;
                if sc.peek()? == Some(b']') {
                    sc.one_of(b"]", "']'")?;
                } else {
                    loop {
                        on(Item::Event(sc.value()?))?;
                        if sc.one_of(b",]", "',' or ']'")? == b']' {
                            break;
                        }
                    }
                }
            } else {
                on(Item::Field(&key, sc.value()?))?;
            }
            if sc.one_of(b",}", "',' or '}'")? == b'}' {
                break;
            }
        }
    }
    if sc.peek()?.is_some() {
        return Err(sc.error("the end of the trace").into());
    }
    Ok(())
}
