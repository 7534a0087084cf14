//! The attributes of DICOM PS3.15 (2024b) Annex E, Table E.1-1 "Application Level
//! Confidentiality Profile Attributes" that a CT or MR image can carry, with the action of the
//! Basic Profile column and the option column that retains them, in one place.
//!
//! The `standard` column copies the Basic Profile action code of the table so that a reader can
//! check each row against the standard. Where the standard allows a choice (`X/Z`, `X/D`,
//! `Z/D`, `X/Z/D`), [`Action`] takes the removal branch (X, else Z): the attributes concerned are
//! Type 2 or 3 in the CT and MR Image IODs, so removing or emptying them keeps the files valid
//! and leaves no invented value behind. Free text that the Clean options would let a human
//! edit (`C`) is removed: no program can tell a name inside a comment.

use dicom_core::Tag;

/// What happens to an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// X: removed.
    Remove,
    /// Z: kept with an empty value (Type 2: must stay present).
    Empty,
    /// Z with a value: PatientName and PatientID get a pseudonym, because a PACS files an empty
    /// patient ID under one patient with every other empty one (PS3.15 allows "a non-zero length
    /// value that may be a dummy value" for Z).
    Pseudonym,
    /// U: a UID replaced by one derived from it, the same wherever the old UID appears.
    Uid,
    /// K: kept (a sequence kept is still recursed into, so the UIDs inside are replaced).
    Keep,
}

/// The options of PS3.15 E.3 that can keep an attribute the Basic Profile would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retained {
    /// E.3.6 Retain Longitudinal Temporal Information with Full Dates: dates and times kept.
    ByFullDates,
    /// E.3.7 Retain Patient Characteristics: age, sex, size, weight and the like kept.
    ByPatientCharacteristics,
}

/// One row of the profile.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub tag: Tag,
    pub keyword: &'static str,
    /// The Basic Profile action code as printed in Table E.1-1.
    pub standard: &'static str,
    pub action: Action,
    /// The option whose column says K for this attribute.
    pub retained_by: Option<Retained>,
}

use Action::*;
use Retained::*;

const fn r(g: u16, e: u16, keyword: &'static str, standard: &'static str, action: Action) -> Rule {
    Rule {
        tag: Tag(g, e),
        keyword,
        standard,
        action,
        retained_by: None,
    }
}

const fn date(
    g: u16,
    e: u16,
    keyword: &'static str,
    standard: &'static str,
    action: Action,
) -> Rule {
    Rule {
        retained_by: Some(ByFullDates),
        ..r(g, e, keyword, standard, action)
    }
}

const fn trait_(
    g: u16,
    e: u16,
    keyword: &'static str,
    standard: &'static str,
    action: Action,
) -> Rule {
    Rule {
        retained_by: Some(ByPatientCharacteristics),
        ..r(g, e, keyword, standard, action)
    }
}

/// The rows, grouped by tag group; each tag appears once.
pub static BASIC_PROFILE: &[Rule] = &[
    r(0x0002, 0x0003, "MediaStorageSOPInstanceUID", "U", Uid),
    r(0x0008, 0x0014, "InstanceCreatorUID", "U", Uid),
    date(0x0008, 0x0012, "InstanceCreationDate", "X/D", Remove),
    date(0x0008, 0x0013, "InstanceCreationTime", "X/Z/D", Remove),
    date(0x0008, 0x0015, "InstanceCoercionDateTime", "X", Remove),
    r(0x0008, 0x0018, "SOPInstanceUID", "U", Uid),
    date(0x0008, 0x0020, "StudyDate", "Z", Empty),
    date(0x0008, 0x0021, "SeriesDate", "X/D", Remove),
    date(0x0008, 0x0022, "AcquisitionDate", "X/Z", Remove),
    date(0x0008, 0x0023, "ContentDate", "Z/D", Empty),
    date(0x0008, 0x0024, "OverlayDate", "X", Remove),
    date(0x0008, 0x0025, "CurveDate", "X", Remove),
    date(0x0008, 0x002A, "AcquisitionDateTime", "X/Z/D", Remove),
    date(0x0008, 0x0030, "StudyTime", "Z", Empty),
    date(0x0008, 0x0031, "SeriesTime", "X/D", Remove),
    date(0x0008, 0x0032, "AcquisitionTime", "X/Z", Remove),
    date(0x0008, 0x0033, "ContentTime", "Z/D", Empty),
    date(0x0008, 0x0034, "OverlayTime", "X", Remove),
    date(0x0008, 0x0035, "CurveTime", "X", Remove),
    r(0x0008, 0x0050, "AccessionNumber", "Z", Empty),
    r(0x0008, 0x0058, "FailedSOPInstanceUIDList", "U", Uid),
    r(0x0008, 0x0080, "InstitutionName", "X/Z/D", Remove),
    r(0x0008, 0x0081, "InstitutionAddress", "X", Remove),
    r(0x0008, 0x0082, "InstitutionCodeSequence", "X/Z/D", Remove),
    r(0x0008, 0x0090, "ReferringPhysicianName", "Z", Empty),
    r(0x0008, 0x0092, "ReferringPhysicianAddress", "X", Remove),
    r(
        0x0008,
        0x0094,
        "ReferringPhysicianTelephoneNumbers",
        "X",
        Remove,
    ),
    r(
        0x0008,
        0x0096,
        "ReferringPhysicianIdentificationSequence",
        "X",
        Remove,
    ),
    r(0x0008, 0x009C, "ConsultingPhysicianName", "Z", Empty),
    r(
        0x0008,
        0x009D,
        "ConsultingPhysicianIdentificationSequence",
        "X",
        Remove,
    ),
    r(0x0008, 0x0201, "TimezoneOffsetFromUTC", "X", Remove),
    r(0x0008, 0x1010, "StationName", "X/Z/D", Remove),
    r(0x0008, 0x1030, "StudyDescription", "X", Remove),
    r(0x0008, 0x1032, "ProcedureCodeSequence", "X/Z", Remove),
    r(0x0008, 0x103E, "SeriesDescription", "X", Remove),
    r(0x0008, 0x1040, "InstitutionalDepartmentName", "X", Remove),
    r(
        0x0008,
        0x1041,
        "InstitutionalDepartmentTypeCodeSequence",
        "X",
        Remove,
    ),
    r(0x0008, 0x1048, "PhysiciansOfRecord", "X", Remove),
    r(
        0x0008,
        0x1049,
        "PhysiciansOfRecordIdentificationSequence",
        "X",
        Remove,
    ),
    r(0x0008, 0x1050, "PerformingPhysicianName", "X", Remove),
    r(
        0x0008,
        0x1052,
        "PerformingPhysicianIdentificationSequence",
        "X",
        Remove,
    ),
    r(0x0008, 0x1060, "NameOfPhysiciansReadingStudy", "X", Remove),
    r(
        0x0008,
        0x1062,
        "PhysiciansReadingStudyIdentificationSequence",
        "X",
        Remove,
    ),
    r(0x0008, 0x1070, "OperatorsName", "X/Z/D", Remove),
    r(
        0x0008,
        0x1072,
        "OperatorIdentificationSequence",
        "X/D",
        Remove,
    ),
    r(0x0008, 0x1080, "AdmittingDiagnosesDescription", "X", Remove),
    r(
        0x0008,
        0x1084,
        "AdmittingDiagnosesCodeSequence",
        "X",
        Remove,
    ),
    r(0x0008, 0x1110, "ReferencedStudySequence", "X/Z", Remove),
    r(
        0x0008,
        0x1111,
        "ReferencedPerformedProcedureStepSequence",
        "X/Z/D",
        Remove,
    ),
    r(0x0008, 0x1120, "ReferencedPatientSequence", "X", Remove),
    // Kept so that viewers still find the localizers, which are de-identified the same way:
    // the ReferencedSOPInstanceUIDs inside are replaced by their own row.
    r(0x0008, 0x1140, "ReferencedImageSequence", "X/Z/U*", Keep),
    r(0x0008, 0x1155, "ReferencedSOPInstanceUID", "U", Uid),
    r(0x0008, 0x1195, "TransactionUID", "U", Uid),
    r(0x0008, 0x2111, "DerivationDescription", "X", Remove),
    r(0x0008, 0x3010, "IrradiationEventUID", "U", Uid),
    r(0x0008, 0x4000, "IdentifyingComments", "X", Remove),
    r(0x0010, 0x0010, "PatientName", "Z", Pseudonym),
    r(0x0010, 0x0020, "PatientID", "Z", Pseudonym),
    r(0x0010, 0x0021, "IssuerOfPatientID", "X", Remove),
    r(
        0x0010,
        0x0024,
        "IssuerOfPatientIDQualifiersSequence",
        "X",
        Remove,
    ),
    r(0x0010, 0x0030, "PatientBirthDate", "Z", Empty),
    r(0x0010, 0x0032, "PatientBirthTime", "X", Remove),
    trait_(0x0010, 0x0040, "PatientSex", "Z", Empty),
    r(
        0x0010,
        0x0050,
        "PatientInsurancePlanCodeSequence",
        "X",
        Remove,
    ),
    r(
        0x0010,
        0x0101,
        "PatientPrimaryLanguageCodeSequence",
        "X",
        Remove,
    ),
    r(
        0x0010,
        0x0102,
        "PatientPrimaryLanguageModifierCodeSequence",
        "X",
        Remove,
    ),
    r(0x0010, 0x1000, "OtherPatientIDs", "X", Remove),
    r(0x0010, 0x1001, "OtherPatientNames", "X", Remove),
    r(0x0010, 0x1002, "OtherPatientIDsSequence", "X", Remove),
    r(0x0010, 0x1005, "PatientBirthName", "X", Remove),
    trait_(0x0010, 0x1010, "PatientAge", "X", Remove),
    trait_(0x0010, 0x1020, "PatientSize", "X", Remove),
    trait_(0x0010, 0x1022, "PatientBodyMassIndex", "X", Remove),
    trait_(0x0010, 0x1023, "MeasuredAPDimension", "X", Remove),
    trait_(0x0010, 0x1024, "MeasuredLateralDimension", "X", Remove),
    trait_(0x0010, 0x1030, "PatientWeight", "X", Remove),
    r(0x0010, 0x1040, "PatientAddress", "X", Remove),
    r(0x0010, 0x1060, "PatientMotherBirthName", "X", Remove),
    r(0x0010, 0x1080, "MilitaryRank", "X", Remove),
    r(0x0010, 0x1081, "BranchOfService", "X", Remove),
    r(0x0010, 0x1090, "MedicalRecordLocator", "X", Remove),
    r(
        0x0010,
        0x1100,
        "ReferencedPatientPhotoSequence",
        "X",
        Remove,
    ),
    r(0x0010, 0x2000, "MedicalAlerts", "X", Remove),
    r(0x0010, 0x2110, "Allergies", "X", Remove),
    r(0x0010, 0x2150, "CountryOfResidence", "X", Remove),
    r(0x0010, 0x2152, "RegionOfResidence", "X", Remove),
    r(0x0010, 0x2154, "PatientTelephoneNumbers", "X", Remove),
    r(0x0010, 0x2155, "PatientTelecomInformation", "X", Remove),
    r(0x0010, 0x2160, "EthnicGroup", "X", Remove),
    r(0x0010, 0x2180, "Occupation", "X", Remove),
    trait_(0x0010, 0x21A0, "SmokingStatus", "X", Remove),
    r(0x0010, 0x21B0, "AdditionalPatientHistory", "X", Remove),
    trait_(0x0010, 0x21C0, "PregnancyStatus", "X", Remove),
    r(0x0010, 0x21D0, "LastMenstrualDate", "X", Remove),
    r(0x0010, 0x21F0, "PatientReligiousPreference", "X", Remove),
    trait_(0x0010, 0x2203, "PatientSexNeutered", "X/Z", Remove),
    r(0x0010, 0x2297, "ResponsiblePerson", "X", Remove),
    r(0x0010, 0x2299, "ResponsibleOrganization", "X", Remove),
    r(0x0010, 0x4000, "PatientComments", "X", Remove),
    r(0x0018, 0x0010, "ContrastBolusAgent", "Z/D", Empty),
    date(0x0018, 0x1042, "ContrastBolusStartTime", "X", Remove),
    date(0x0018, 0x1043, "ContrastBolusStopTime", "X", Remove),
    date(
        0x0018,
        0x1078,
        "RadiopharmaceuticalStartDateTime",
        "X",
        Remove,
    ),
    date(
        0x0018,
        0x1079,
        "RadiopharmaceuticalStopDateTime",
        "X",
        Remove,
    ),
    r(0x0018, 0x1000, "DeviceSerialNumber", "X/Z/D", Remove),
    r(0x0018, 0x1002, "DeviceUID", "U", Uid),
    r(0x0018, 0x1004, "PlateID", "X", Remove),
    r(0x0018, 0x1005, "GeneratorID", "X", Remove),
    r(0x0018, 0x1007, "CassetteID", "X", Remove),
    r(0x0018, 0x1008, "GantryID", "X", Remove),
    r(0x0018, 0x100A, "UDISequence", "X", Remove),
    r(0x0018, 0x1010, "SecondaryCaptureDeviceID", "X", Remove),
    date(0x0018, 0x1012, "DateOfSecondaryCapture", "X", Remove),
    date(0x0018, 0x1014, "TimeOfSecondaryCapture", "X", Remove),
    r(0x0018, 0x1030, "ProtocolName", "X/D", Remove),
    date(0x0018, 0x1200, "DateOfLastCalibration", "X", Remove),
    date(0x0018, 0x1201, "TimeOfLastCalibration", "X", Remove),
    r(
        0x0018,
        0x1400,
        "AcquisitionDeviceProcessingDescription",
        "X/D",
        Remove,
    ),
    r(0x0018, 0x4000, "AcquisitionComments", "X", Remove),
    r(0x0018, 0x700A, "DetectorID", "X/D", Remove),
    date(
        0x0018,
        0x700C,
        "DateOfLastDetectorCalibration",
        "X/D",
        Remove,
    ),
    date(0x0018, 0x9074, "FrameAcquisitionDateTime", "X/D", Remove),
    date(0x0018, 0x9151, "FrameReferenceDateTime", "X/D", Remove),
    r(
        0x0018,
        0x9185,
        "RespiratoryMotionCompensationTechniqueDescription",
        "X",
        Remove,
    ),
    r(0x0018, 0x9367, "XRaySourceID", "X/D", Remove),
    r(0x0018, 0x9371, "XRayDetectorID", "X/D", Remove),
    r(
        0x0018,
        0x9424,
        "AcquisitionProtocolDescription",
        "X",
        Remove,
    ),
    date(0x0018, 0x9516, "StartAcquisitionDateTime", "X/D", Remove),
    date(0x0018, 0x9517, "EndAcquisitionDateTime", "X/D", Remove),
    r(0x0018, 0xA003, "ContributionDescription", "X", Remove),
    r(0x0020, 0x000D, "StudyInstanceUID", "U", Uid),
    r(0x0020, 0x000E, "SeriesInstanceUID", "U", Uid),
    r(0x0020, 0x0010, "StudyID", "Z", Empty),
    r(0x0020, 0x0052, "FrameOfReferenceUID", "U", Uid),
    r(
        0x0020,
        0x0200,
        "SynchronizationFrameOfReferenceUID",
        "U",
        Uid,
    ),
    r(0x0020, 0x4000, "ImageComments", "X", Remove),
    r(0x0020, 0x9158, "FrameComments", "X", Remove),
    r(0x0020, 0x9161, "ConcatenationUID", "U", Uid),
    r(0x0020, 0x9164, "DimensionOrganizationUID", "U", Uid),
    r(0x0028, 0x1199, "PaletteColorLookupTableUID", "U", Uid),
    r(0x0028, 0x4000, "ImagePresentationComments", "X", Remove),
    r(0x0032, 0x0012, "StudyIDIssuer", "X", Remove),
    r(0x0032, 0x1020, "ScheduledStudyLocation", "X", Remove),
    r(0x0032, 0x1021, "ScheduledStudyLocationAETitle", "X", Remove),
    r(0x0032, 0x1030, "ReasonForStudy", "X", Remove),
    r(0x0032, 0x1032, "RequestingPhysician", "X", Remove),
    r(0x0032, 0x1033, "RequestingService", "X", Remove),
    r(
        0x0032,
        0x1060,
        "RequestedProcedureDescription",
        "X/Z",
        Remove,
    ),
    r(0x0032, 0x1070, "RequestedContrastAgent", "X", Remove),
    r(0x0032, 0x4000, "StudyComments", "X", Remove),
    r(0x0038, 0x0010, "AdmissionID", "X", Remove),
    r(0x0038, 0x0050, "SpecialNeeds", "X", Remove),
    r(0x0038, 0x0300, "CurrentPatientLocation", "X", Remove),
    r(0x0038, 0x0400, "PatientInstitutionResidence", "X", Remove),
    r(0x0038, 0x0500, "PatientState", "X", Remove),
    r(0x0040, 0x0001, "ScheduledStationAETitle", "X", Remove),
    date(
        0x0040,
        0x0002,
        "ScheduledProcedureStepStartDate",
        "X",
        Remove,
    ),
    date(
        0x0040,
        0x0003,
        "ScheduledProcedureStepStartTime",
        "X",
        Remove,
    ),
    date(0x0040, 0x0004, "ScheduledProcedureStepEndDate", "X", Remove),
    date(0x0040, 0x0005, "ScheduledProcedureStepEndTime", "X", Remove),
    r(
        0x0040,
        0x0006,
        "ScheduledPerformingPhysicianName",
        "X",
        Remove,
    ),
    r(
        0x0040,
        0x0007,
        "ScheduledProcedureStepDescription",
        "X",
        Remove,
    ),
    r(0x0040, 0x0009, "ScheduledProcedureStepID", "X", Remove),
    r(0x0040, 0x0010, "ScheduledStationName", "X", Remove),
    r(
        0x0040,
        0x0011,
        "ScheduledProcedureStepLocation",
        "X",
        Remove,
    ),
    r(0x0040, 0x0012, "PreMedication", "X", Remove),
    r(0x0040, 0x0241, "PerformedStationAETitle", "X", Remove),
    r(0x0040, 0x0242, "PerformedStationName", "X", Remove),
    r(0x0040, 0x0243, "PerformedLocation", "X", Remove),
    date(
        0x0040,
        0x0244,
        "PerformedProcedureStepStartDate",
        "X",
        Remove,
    ),
    date(
        0x0040,
        0x0245,
        "PerformedProcedureStepStartTime",
        "X",
        Remove,
    ),
    date(0x0040, 0x0250, "PerformedProcedureStepEndDate", "X", Remove),
    date(0x0040, 0x0251, "PerformedProcedureStepEndTime", "X", Remove),
    r(0x0040, 0x0253, "PerformedProcedureStepID", "X", Remove),
    r(
        0x0040,
        0x0254,
        "PerformedProcedureStepDescription",
        "X",
        Remove,
    ),
    r(0x0040, 0x0275, "RequestAttributesSequence", "X", Remove),
    r(
        0x0040,
        0x0280,
        "CommentsOnThePerformedProcedureStep",
        "X",
        Remove,
    ),
    r(0x0040, 0x0310, "CommentsOnRadiationDose", "X", Remove),
    r(0x0040, 0x0555, "AcquisitionContextSequence", "X", Remove),
    r(0x0040, 0x1001, "RequestedProcedureID", "X", Remove),
    r(
        0x0040,
        0x1002,
        "ReasonForTheRequestedProcedure",
        "X",
        Remove,
    ),
    r(0x0040, 0x1004, "PatientTransportArrangements", "X", Remove),
    r(0x0040, 0x1005, "RequestedProcedureLocation", "X", Remove),
    r(
        0x0040,
        0x1010,
        "NamesOfIntendedRecipientsOfResults",
        "X",
        Remove,
    ),
    r(0x0040, 0x1400, "RequestedProcedureComments", "X", Remove),
    r(
        0x0040,
        0x2001,
        "ReasonForTheImagingServiceRequest",
        "X",
        Remove,
    ),
    r(
        0x0040,
        0x2016,
        "PlacerOrderNumberImagingServiceRequest",
        "Z",
        Empty,
    ),
    r(
        0x0040,
        0x2017,
        "FillerOrderNumberImagingServiceRequest",
        "Z",
        Empty,
    ),
    r(0x0040, 0x2400, "ImagingServiceRequestComments", "X", Remove),
    r(0x0040, 0xA07A, "ParticipantSequence", "X", Remove),
    r(0x0040, 0xA124, "UID", "U", Uid),
    r(0x0040, 0xA730, "ContentSequence", "X", Remove),
    r(0x0088, 0x0140, "StorageMediaFileSetUID", "U", Uid),
    r(0x0088, 0x0200, "IconImageSequence", "X", Remove),
    r(0x0400, 0x0100, "DigitalSignatureUID", "X", Remove),
    r(
        0x0400,
        0x0402,
        "ReferencedDigitalSignatureSequence",
        "X",
        Remove,
    ),
    r(
        0x0400,
        0x0403,
        "ReferencedSOPInstanceMACSequence",
        "X",
        Remove,
    ),
    r(0x0400, 0x0561, "OriginalAttributesSequence", "X", Remove),
    r(0x3006, 0x0024, "ReferencedFrameOfReferenceUID", "U", Uid),
    r(0x3006, 0x00C2, "RelatedFrameOfReferenceUID", "U", Uid),
    r(0xFFFA, 0xFFFA, "DigitalSignaturesSequence", "X", Remove),
];

/// Overlay attributes live in the repeating groups 6000-601E (even): their data can hold burned
/// text and their comments free text, both X in the table.
pub const OVERLAY_ELEMENTS: [(u16, &str); 2] =
    [(0x3000, "OverlayData"), (0x4000, "OverlayComments")];

/// The row for `tag`, if the profile lists it.
pub fn rule(tag: Tag) -> Option<&'static Rule> {
    BASIC_PROFILE.iter().find(|r| r.tag == tag)
}
