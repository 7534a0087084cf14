//! # defacer-deid
//!
//! DICOM de-identification: the Basic Application Level Confidentiality Profile of DICOM PS3.15
//! (2023b) Annex E applied to [dicom-rs](https://github.com/Enet4/dicom-rs) objects, with the
//! options a research or PACS export needs, and a record of every change.
//!
//! - [`BASIC_PROFILE`]: the attributes of Table E.1-1 a CT or MR image can carry, each with its
//!   action (remove, empty, pseudonym, replace UID, keep), as data in one place.
//! - [`Options`]: which PS3.15 E.3 options to apply (keep full dates, keep patient
//!   characteristics) and whether the pixel data had the face removed.
//! - [`deidentify`] / [`deidentify_dataset`] change an object in place, recursing into
//!   sequences, remove every private attribute, replace every listed UID with [`derive_uid`] (a
//!   pure function of the old UID, so the same study, series, frame of reference or referenced
//!   image gets the same new UID in every file and every run), add PatientIdentityRemoved,
//!   DeidentificationMethod and its code sequence, and return the [`Change`]s made. A change
//!   names the attribute and what was done, never the old value.
//!
//! Why not an existing crate: `dicom-anonymization` (the one Rust implementation found) is built
//! on dicom-rs 0.8 objects, which cannot be handed to or from the 0.10 objects read here without
//! re-encoding every file, pulls a command-line stack into the library, and does not record the
//! de-identification method codes PS3.15 asks for; the profile itself is a table and fifty lines
//! of tree walking.
//!
//! ```
//! use defacer_deid::{deidentify_dataset, ChangeKind, Options};
//! use dicom_core::{DataElement, PrimitiveValue, VR};
//! use dicom_dictionary_std::tags;
//! use dicom_object::InMemDicomObject;
//!
//! let mut obj = InMemDicomObject::from_element_iter([
//!     DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("Doe^Jane")),
//!     DataElement::new(tags::PATIENT_AGE, VR::AS, PrimitiveValue::from("041Y")),
//!     DataElement::new(tags::STUDY_DATE, VR::DA, PrimitiveValue::from("20210902")),
//!     DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.4")),
//!     DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("MR")),
//! ]);
//! let opts = Options { retain_patient_characteristics: true, ..Options::default() };
//! let changes = deidentify_dataset(&mut obj, &opts);
//!
//! assert_ne!(obj.element(tags::PATIENT_NAME)?.to_str()?, "Doe^Jane");
//! assert_eq!(obj.element(tags::PATIENT_AGE)?.to_str()?, "041Y");
//! assert!(obj.element(tags::STUDY_DATE)?.to_str()?.is_empty());
//! assert_eq!(
//!     obj.element(tags::STUDY_INSTANCE_UID)?.to_str()?,
//!     defacer_deid::derive_uid("1.2.3.4")
//! );
//! assert_eq!(obj.element(tags::PATIENT_IDENTITY_REMOVED)?.to_str()?, "YES");
//! assert!(changes.iter().any(|c| c.attribute == "PatientName" && c.action == ChangeKind::Pseudonym));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod profile;
mod uid;

use std::collections::BTreeSet;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::HasLength;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::{FileDicomObject, InMemDicomObject};
use serde::Serialize;

pub use profile::{Action, Retained, Rule, BASIC_PROFILE};
pub use uid::derive_uid;

/// Which PS3.15 E.3 options are applied on top of the Basic Profile. The default is the Basic
/// Profile alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Retain Longitudinal Temporal Information with Full Dates (E.3.6, code 113106): study,
    /// series, acquisition and content dates and times are kept unchanged.
    pub retain_full_dates: bool,
    /// Retain Patient Characteristics (E.3.7, code 113108): age, sex, size, weight, body mass
    /// index, pregnancy and smoking status are kept.
    pub retain_patient_characteristics: bool,
    /// The pixel data had the face removed (Clean Recognizable Visual Features, E.3.2, code
    /// 113102): recorded in the method codes, nothing else changes here.
    pub face_removed: bool,
    /// PatientName and PatientID of the output (e.g. a research subject code). `None`: a
    /// pseudonym derived from the original StudyInstanceUID, the same for every series of one
    /// study and never computed from the patient's own identifiers.
    pub patient_pseudonym: Option<String>,
}

/// What was done to one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Removed,
    Emptied,
    /// Replaced by the pseudonym (PatientName, PatientID).
    Pseudonym,
    UidReplaced,
    /// Replaced by a fixed dummy (D): a date no scan was made on, `ANONYMOUS`, or a sequence
    /// without items.
    Dummy,
    /// Added by the de-identification (PatientIdentityRemoved, DeidentificationMethod...).
    Added,
}

/// One attribute changed by de-identification. Old values are never kept: the attribute name is
/// the record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Change {
    /// `(gggg,eeee)`, prefixed by the sequence tags it is nested in (`(0008,1140)/(0008,1155)`);
    /// private attributes of one group are one change, `(gggg,xxxx)`.
    pub tag: String,
    /// Keyword path, e.g. `PatientName` or `ReferencedImageSequence/ReferencedSOPInstanceUID`.
    pub attribute: String,
    pub action: ChangeKind,
}

/// De-identifies a whole file: the data set (see [`deidentify_dataset`]) and the file meta
/// group, whose MediaStorageSOPInstanceUID follows the new SOPInstanceUID and whose application
/// entity titles (often the scanner's station name) and private information are cleared.
pub fn deidentify(
    file: &mut FileDicomObject<InMemDicomObject>,
    opts: &Options,
) -> BTreeSet<Change> {
    let mut changes = deidentify_dataset(file, opts);
    let meta = file.meta().clone();
    let new_sop = derive_uid(&meta.media_storage_sop_instance_uid);
    let mut record = |tag: Tag, keyword: &str, action| {
        changes.insert(Change {
            tag: tag_text(tag),
            attribute: keyword.to_string(),
            action,
        });
    };
    record(
        tags::MEDIA_STORAGE_SOP_INSTANCE_UID,
        "MediaStorageSOPInstanceUID",
        ChangeKind::UidReplaced,
    );
    let cleared = [
        (
            meta.source_application_entity_title.is_some(),
            tags::SOURCE_APPLICATION_ENTITY_TITLE,
            "SourceApplicationEntityTitle",
        ),
        (
            meta.sending_application_entity_title.is_some(),
            tags::SENDING_APPLICATION_ENTITY_TITLE,
            "SendingApplicationEntityTitle",
        ),
        (
            meta.receiving_application_entity_title.is_some(),
            tags::RECEIVING_APPLICATION_ENTITY_TITLE,
            "ReceivingApplicationEntityTitle",
        ),
        (
            meta.private_information.is_some() || meta.private_information_creator_uid.is_some(),
            tags::PRIVATE_INFORMATION,
            "PrivateInformation",
        ),
    ];
    for (present, tag, keyword) in cleared {
        if present {
            record(tag, keyword, ChangeKind::Removed);
        }
    }
    file.update_meta(|m| {
        m.media_storage_sop_instance_uid = new_sop;
        m.source_application_entity_title = None;
        m.sending_application_entity_title = None;
        m.receiving_application_entity_title = None;
        m.private_information = None;
        m.private_information_creator_uid = None;
    });
    changes
}

/// De-identifies a data set in place and returns what changed (sorted, each change once).
pub fn deidentify_dataset(obj: &mut InMemDicomObject, opts: &Options) -> BTreeSet<Change> {
    let (pseudonym, pseudonym_name) = match &opts.patient_pseudonym {
        Some(p) => (p.clone(), p.clone()),
        None => {
            let study = string_of(obj, tags::STUDY_INSTANCE_UID).unwrap_or_default();
            let h = (uid::fnv1a_128("defacer patient pseudonym", &study) >> 64) as u64;
            // A person name has components: family ANON, given the code.
            (format!("ANON-{h:016X}"), format!("ANON^{h:016X}"))
        }
    };
    let mut walk = Walk {
        opts,
        pseudonym: &pseudonym,
        pseudonym_name: &pseudonym_name,
        enhanced: obj
            .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
            .is_some(),
        changes: BTreeSet::new(),
    };
    walk.dataset(obj, "", "");
    let mut changes = walk.changes;
    for (tag, keyword) in add_method(obj, opts) {
        changes.insert(Change {
            tag: tag_text(tag),
            attribute: keyword.to_string(),
            action: ChangeKind::Added,
        });
    }
    changes
}

struct Walk<'a> {
    opts: &'a Options,
    pseudonym: &'a str,
    /// The pseudonym as a person name (PN).
    pseudonym_name: &'a str,
    /// An enhanced multi-frame image, whose ContentDate and ContentTime are Type 1.
    enhanced: bool,
    changes: BTreeSet<Change>,
}

impl Walk<'_> {
    fn dataset(&mut self, obj: &mut InMemDicomObject, tag_path: &str, name_path: &str) {
        let present: Vec<Tag> = obj.iter().map(|e| e.header().tag).collect();
        for tag in present {
            let Some((kind, keyword)) = self.element(obj, tag, tag_path, name_path) else {
                continue;
            };
            let tag_shown = if tag.group() & 1 == 1 {
                format!("({:04X},xxxx)", tag.group())
            } else {
                tag_text(tag)
            };
            self.changes.insert(Change {
                tag: format!("{tag_path}{tag_shown}"),
                attribute: format!("{name_path}{keyword}"),
                action: kind,
            });
        }
    }

    /// Applies the profile to one element; returns what was done, if anything.
    fn element(
        &mut self,
        obj: &mut InMemDicomObject,
        tag: Tag,
        tag_path: &str,
        name_path: &str,
    ) -> Option<(ChangeKind, String)> {
        if tag.group() & 1 == 1 {
            // Private attributes and their creators: E.3.10 (Retain Safe Private) is not offered.
            obj.remove_element(tag);
            return Some((
                ChangeKind::Removed,
                format!("private group {:04X}", tag.group()),
            ));
        }
        if is_overlay_text(tag) || profile::CURVE_GROUPS.contains(&tag.group()) {
            obj.remove_element(tag);
            return Some((ChangeKind::Removed, keyword_of(tag)));
        }
        let rule = profile::rule(tag);
        let action = match rule {
            Some(rule) if self.retained(rule) => Action::Keep,
            Some(rule) => rule.action,
            None => Action::Keep,
        };
        let keyword = keyword_of(tag);
        let elem = obj.get(tag)?;
        let vr = elem.vr();
        match action {
            Action::Remove => {
                obj.remove_element(tag);
                Some((ChangeKind::Removed, keyword))
            }
            Action::Empty => {
                if elem.is_empty() {
                    return None;
                }
                let type_1 = self.enhanced && tag_path.is_empty();
                if let Some(dummy) = dummy_value(vr).filter(|_| type_1) {
                    if rule.is_some_and(|r| r.standard.contains('D')) {
                        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(dummy)));
                        return Some((ChangeKind::Dummy, keyword));
                    }
                }
                if vr == VR::SQ {
                    obj.put(DataElement::new(
                        tag,
                        VR::SQ,
                        DataSetSequence::new(Vec::<InMemDicomObject>::new(), Length::UNDEFINED),
                    ));
                } else {
                    obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
                }
                Some((ChangeKind::Emptied, keyword))
            }
            Action::Dummy => {
                if vr == VR::SQ {
                    if elem.items().is_some_and(|i| i.is_empty()) {
                        return None;
                    }
                    obj.put(DataElement::new(
                        tag,
                        VR::SQ,
                        DataSetSequence::new(Vec::<InMemDicomObject>::new(), Length::UNDEFINED),
                    ));
                } else {
                    let dummy = dummy_value(vr).unwrap_or("ANONYMOUS");
                    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(dummy)));
                }
                Some((ChangeKind::Dummy, keyword))
            }
            Action::Pseudonym => {
                let value = if vr == VR::PN {
                    self.pseudonym_name
                } else {
                    self.pseudonym
                };
                obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
                Some((ChangeKind::Pseudonym, keyword))
            }
            Action::Uid => {
                let old: Vec<String> = elem
                    .to_multi_str()
                    .map(|v| {
                        v.iter()
                            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                let old: Vec<String> = old.into_iter().filter(|s| !s.is_empty()).collect();
                if old.is_empty() {
                    return None;
                }
                let new: Vec<String> = old.iter().map(|u| derive_uid(u)).collect();
                obj.put(DataElement::new(
                    tag,
                    VR::UI,
                    PrimitiveValue::Strs(new.into()),
                ));
                Some((ChangeKind::UidReplaced, keyword))
            }
            Action::Keep => {
                if matches!(elem.value(), Value::Sequence(_)) {
                    let inner_tags = format!("{tag_path}{}/", tag_text(tag));
                    let inner_names = format!("{name_path}{keyword}/");
                    obj.update_value(tag, |v| {
                        for item in v.items_mut().into_iter().flatten() {
                            self.dataset(item, &inner_tags, &inner_names);
                        }
                    });
                }
                None
            }
        }
    }

    fn retained(&self, rule: &Rule) -> bool {
        match rule.retained_by {
            Some(Retained::ByFullDates) => self.opts.retain_full_dates,
            Some(Retained::ByPatientCharacteristics) => self.opts.retain_patient_characteristics,
            None => false,
        }
    }
}

/// The dummy of the D action for temporal VRs: a date no scan was made on, so that nobody
/// mistakes it for a real one.
fn dummy_value(vr: VR) -> Option<&'static str> {
    match vr {
        VR::DA => Some("19000101"),
        VR::TM => Some("000000"),
        VR::DT => Some("19000101000000"),
        _ => None,
    }
}

fn is_overlay_text(tag: Tag) -> bool {
    (0x6000..=0x601E).contains(&tag.group())
        && tag.group() & 1 == 0
        && profile::OVERLAY_ELEMENTS
            .iter()
            .any(|&(e, _)| e == tag.element())
}

/// The CID 7050 codes (coding scheme DCM) of what was applied.
fn method_codes(opts: &Options) -> Vec<(&'static str, &'static str)> {
    let mut codes = vec![("113100", "Basic Application Confidentiality Profile")];
    if opts.face_removed {
        codes.push(("113102", "Clean Recognizable Visual Features Option"));
    }
    if opts.retain_full_dates {
        codes.push((
            "113106",
            "Retain Longitudinal Temporal Information Full Dates Option",
        ));
    }
    if opts.retain_patient_characteristics {
        codes.push(("113108", "Retain Patient Characteristics Option"));
    }
    codes
}

/// Records the de-identification in the object (PS3.3 C.7.1.1 Patient Module attributes, and
/// C.7.6.1 LongitudinalTemporalInformationModified); returns the attributes written.
fn add_method(obj: &mut InMemDicomObject, opts: &Options) -> Vec<(Tag, &'static str)> {
    let codes = method_codes(opts);
    obj.put(DataElement::new(
        tags::PATIENT_IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    let meanings: Vec<String> = codes.iter().map(|(_, m)| m.to_string()).collect();
    obj.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        PrimitiveValue::Strs(meanings.into()),
    ));
    let items: Vec<InMemDicomObject> = codes
        .iter()
        .map(|(value, meaning)| {
            InMemDicomObject::from_element_iter([
                DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(*value)),
                DataElement::new(
                    tags::CODING_SCHEME_DESIGNATOR,
                    VR::SH,
                    PrimitiveValue::from("DCM"),
                ),
                DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(*meaning)),
            ])
        })
        .collect();
    obj.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(items, Length::UNDEFINED),
    ));
    let temporal = if opts.retain_full_dates {
        "UNMODIFIED"
    } else {
        "REMOVED"
    };
    obj.put(DataElement::new(
        tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
        VR::CS,
        PrimitiveValue::from(temporal),
    ));
    vec![
        (tags::PATIENT_IDENTITY_REMOVED, "PatientIdentityRemoved"),
        (tags::DEIDENTIFICATION_METHOD, "DeidentificationMethod"),
        (
            tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            "DeidentificationMethodCodeSequence",
        ),
        (
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
            "LongitudinalTemporalInformationModified",
        ),
    ]
}

fn tag_text(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.group(), tag.element())
}

/// The profile's keyword, else the standard dictionary's, else the tag itself.
fn keyword_of(tag: Tag) -> String {
    if let Some(rule) = profile::rule(tag) {
        return rule.keyword.to_string();
    }
    if let Some(&(_, name)) = profile::OVERLAY_ELEMENTS
        .iter()
        .find(|&&(e, _)| is_overlay_text(tag) && e == tag.element())
    {
        return name.to_string();
    }
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_string())
        .unwrap_or_else(|| tag_text(tag))
}

fn string_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_images_keep_a_dummy_content_date_and_classic_ones_an_empty_one() {
        let make = |enhanced: bool| {
            let mut obj = InMemDicomObject::from_element_iter([
                DataElement::new(tags::CONTENT_DATE, VR::DA, PrimitiveValue::from("20210902")),
                DataElement::new(
                    tags::CONTENT_TIME,
                    VR::TM,
                    PrimitiveValue::from("130013.04"),
                ),
            ]);
            if enhanced {
                obj.put(DataElement::new(
                    tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
                    VR::SQ,
                    DataSetSequence::new(vec![InMemDicomObject::new_empty()], Length::UNDEFINED),
                ));
            }
            deidentify_dataset(&mut obj, &Options::default());
            let date = obj.element(tags::CONTENT_DATE).unwrap().to_str().unwrap();
            let time = obj.element(tags::CONTENT_TIME).unwrap().to_str().unwrap();
            (date.trim().to_string(), time.trim().to_string())
        };
        assert_eq!(make(true), ("19000101".to_string(), "000000".to_string()));
        assert_eq!(make(false), (String::new(), String::new()));
    }

    #[test]
    fn each_tag_is_listed_once_with_a_keyword_the_dictionary_agrees_with() {
        let mut seen = BTreeSet::new();
        for rule in BASIC_PROFILE {
            assert!(seen.insert(rule.tag), "{} listed twice", rule.keyword);
            if let Some(entry) = StandardDataDictionary.by_tag(rule.tag) {
                assert_eq!(entry.alias(), rule.keyword, "{}", tag_text(rule.tag));
            }
            assert!(
                rule.standard
                    .split('/')
                    .any(|code| code.trim_end_matches('*')
                        == match rule.action {
                            Action::Remove => "X",
                            Action::Empty | Action::Pseudonym => "Z",
                            Action::Uid => "U",
                            Action::Dummy => "D",
                            Action::Keep => "U",
                        }),
                "{}: {:?} is not one of {}",
                rule.keyword,
                rule.action,
                rule.standard
            );
        }
    }
}
