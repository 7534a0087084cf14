//! Replacement UIDs: a pure function of the old UID, so that the same original maps to the same
//! new UID in every file, series and run, without a table shared between them.

/// Fixed root hashed with each old UID, so a derived UID is the same on every run (byte-identical
/// output) yet different from the original.
const UID_DERIVATION_ROOT: &str = "defacer derived instance";

/// A new UID under the UUID-derived root `2.25` (PS3.5 B.2): the decimal of a 128-bit hash of a
/// fixed root and the old UID. FNV-1a is used because its definition never changes between
/// releases or platforms, unlike `std`'s hasher.
///
/// The mapping is not secret: whoever holds an original UID can compute its replacement and so
/// link a de-identified file to the original study, which PS3.15 accepts for U (the original UID
/// is itself only known to those who hold the identified data).
pub fn derive_uid(old: &str) -> String {
    format!("2.25.{}", fnv1a_128(UID_DERIVATION_ROOT, old))
}

/// FNV-1a over `root`, a zero byte, and `value` without DICOM's trailing padding.
pub(crate) fn fnv1a_128(root: &str, value: &str) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for b in root
        .bytes()
        .chain([0u8])
        .chain(value.trim_end_matches(['\0', ' ']).bytes())
    {
        h ^= b as u128;
        h = h.wrapping_mul(PRIME);
    }
    h
}
