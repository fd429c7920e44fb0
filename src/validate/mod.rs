//! Validation: reads a file and checks every row and the file as a whole, in
//! one pass, never stopping at the first problem.

pub(crate) mod error_csv;
pub(crate) mod file;
pub(crate) mod row;
pub(crate) mod stream;
pub(crate) mod tokens;

pub(crate) use stream::Stream;

use std::ops::ControlFlow;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::index::HashIndex;
use crate::input::header::{self, Header};
use crate::input::{self, Encoding, Format, InputInfo, reader};
use crate::issue::{Code, Issue, Severity, sort_issues};
use crate::profile::Profile;
use crate::record::{Action, User, UserBuilder};
use crate::schema::{Field, fold_header, folds_to};

pub use tokens::ListEdit;

/// A data row of the file after validation.
///
/// ```
/// let v = user_import::Importer::new("acme")
///     .validate(b"userId,email,transaction\njdoe,jdoe@example.com,\nold,,DELETE\n", None);
/// let rows = v.rows();
/// assert_eq!(rows[0].line, 2);
/// assert_eq!(rows[0].user.user_id(), Some("jdoe"));
/// assert_eq!(rows[1].action, user_import::Action::Delete);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Row {
    /// Physical line where the row starts (header = 1).
    pub line: u64,
    /// Upsert or delete.
    pub action: Action,
    /// `notifyIfNewUser=true`.
    pub notify: bool,
    /// The valid values of the row, canonicalized. Values that failed a check
    /// are left out; so are blank cells under the default blank policy (they
    /// change nothing), while under `BlankPolicy::Clear` a blank cell is an
    /// empty value.
    pub user: User,
    /// Whether the row has at least one error.
    pub error: bool,
    /// The list cells written as changes (`ListPolicy::Tokens`), boxed so
    /// that a row pays 8 bytes for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) edits: Option<Box<Edits>>,
}

/// The list edits of a row (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct Edits(pub(crate) Vec<ListEdit>);

impl Row {
    /// The row's key (as written), if any.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId,email\njdoe,j@x.io\n", None);
    /// assert_eq!(v.rows()[0].key(user_import::KeyField::UserId), Some("jdoe"));
    /// ```
    pub fn key(&self, key: crate::schema::KeyField) -> Option<&str> {
        self.user.value(key.field())
    }

    /// The row's list cells written as changes (`+X`, `-X`), one edit per
    /// list; empty unless the profile's list policy is
    /// [`ListPolicy::Tokens`](crate::ListPolicy::Tokens). See [`ListEdit`].
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId,email,roles\na,a@x.io,-Guest\n", None);
    /// // Under the default policy a list is read as written.
    /// assert!(v.rows()[0].edits().is_empty());
    /// assert_eq!(v.rows()[0].user.roles().collect::<Vec<_>>(), ["-Guest"]);
    /// ```
    pub fn edits(&self) -> &[ListEdit] {
        self.edits.as_deref().map_or(&[], |e| e.0.as_slice())
    }
}

/// The result of reading and validating a file: typed rows, and every issue
/// found, file-level and per row, in a deterministic order (by line, then
/// column).
///
/// ```
/// use user_import::{Code, Importer};
/// let file = b"userId,email\njdoe,not-an-email\n,ann@example.com\n";
/// let v = Importer::new("acme").validate(file, Some("users.csv"));
/// assert!(v.has_errors());
/// let codes: Vec<_> = v.issues().map(|i| (i.line, i.code)).collect();
/// assert_eq!(codes, [(Some(2), Code::InvalidEmail), (Some(3), Code::MissingValue)]);
/// ```
///
/// Serialized (serde), a validation is one object: `input`, `tenant`,
/// `columns`, `counts`, `issues` (file-level) and `rows`, one entry per data
/// row in file order with its `line`, `key`, `action`, `error`, `user`,
/// `edits` (only when the row has some: [`Row::edits`]) and `issues`.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    pub(crate) input: InputInfo,
    pub(crate) tenant: String,
    pub(crate) columns: Vec<String>,
    /// The file's column of each field, by `Field::ALL` index, as written
    /// (the canonical header where the file has none).
    pub(crate) field_columns: Vec<String>,
    pub(crate) file_issues: Vec<Issue>,
    pub(crate) rows: Vec<Row>,
    /// Row issues, sorted by line.
    pub(crate) row_issues: Vec<Issue>,
    /// The key field, for the rows' keys.
    pub(crate) key: crate::schema::KeyField,
    /// The limits the file was read under (to read it again for the error CSV).
    pub(crate) limits: crate::input::Limits,
    /// The rows indexed by user id, kept for planning.
    pub(crate) ids: Option<HashIndex>,
    /// When reading began.
    pub(crate) started: Option<std::time::SystemTime>,
}

impl Serialize for Validation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct RowOut<'a> {
            line: u64,
            key: Option<&'a str>,
            action: Action,
            error: bool,
            user: &'a User,
            #[serde(skip_serializing_if = "<[ListEdit]>::is_empty")]
            edits: &'a [ListEdit],
            issues: &'a [Issue],
        }
        struct Rows<'a>(&'a Validation);
        impl Serialize for Rows<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let v = self.0;
                s.collect_seq(v.rows.iter().map(|r| RowOut {
                    line: r.line,
                    key: r.key(v.key),
                    action: r.action,
                    error: r.error,
                    user: &r.user,
                    edits: r.edits(),
                    issues: v.row_issues(r.line),
                }))
            }
        }
        #[derive(Serialize)]
        struct Out<'a> {
            input: &'a InputInfo,
            tenant: &'a str,
            columns: &'a [String],
            counts: ValidationCounts,
            issues: &'a [Issue],
            rows: Rows<'a>,
        }
        Out {
            input: &self.input,
            tenant: &self.tenant,
            columns: &self.columns,
            counts: self.counts(),
            issues: &self.file_issues,
            rows: Rows(self),
        }
        .serialize(serializer)
    }
}

impl Validation {
    /// Format, encoding and delimiter the file was read with.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId\temail\na\ta@x.io\n", Some("u.txt"));
    /// assert_eq!(v.input().delimiter, user_import::Delimiter::Tab);
    /// ```
    pub fn input(&self) -> &InputInfo {
        &self.input
    }

    /// The tenant the file was validated for.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("acme").validate(b"", None).tenant(), "acme");
    /// ```
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The header as written in the file (trimmed).
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b" userId , email\na,a@x.io\n", None);
    /// assert_eq!(v.columns(), ["userId", "email"]);
    /// ```
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The data rows, in file order.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId,email\na,a@x.io\n\nb,b@x.io\n", None);
    /// assert_eq!(v.rows().iter().map(|r| r.line).collect::<Vec<_>>(), [2, 4]);
    /// ```
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Issues about the file as a whole (header, encoding, limits, emptiness).
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"", None);
    /// assert_eq!(v.file_issues()[0].code, user_import::Code::FileEmpty);
    /// ```
    pub fn file_issues(&self) -> &[Issue] {
        &self.file_issues
    }

    /// The issues of the row that starts on `line`.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId,email\na,bad\n", None);
    /// assert_eq!(v.row_issues(2).len(), 1);
    /// assert!(v.row_issues(3).is_empty());
    /// ```
    pub fn row_issues(&self, line: u64) -> &[Issue] {
        issues_of_line(&self.row_issues, line)
    }

    /// Every issue: file-level first, then by line and column.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId,email,shoe\na,a@x.io,42\n", None);
    /// assert_eq!(v.issues().next().unwrap().code, user_import::Code::UnknownColumn);
    /// ```
    pub fn issues(&self) -> impl Iterator<Item = &Issue> + '_ {
        self.file_issues.iter().chain(&self.row_issues)
    }

    /// `true` when the file or any row has an error.
    ///
    /// ```
    /// assert!(!user_import::Importer::new("t").validate(b"userId,email\na,a@x.io\n", None).has_errors());
    /// ```
    pub fn has_errors(&self) -> bool {
        self.file_error() || self.rows.iter().any(|r| r.error)
    }

    /// `true` when a file-level issue is an error (nothing can be imported).
    pub(crate) fn file_error(&self) -> bool {
        self.file_issues.iter().any(Issue::is_error)
    }

    /// Counts: rows, rows with errors, errors and warnings.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId,email\na,a@x.io\nb,bad\n", None);
    /// let c = v.counts();
    /// assert_eq!((c.rows, c.invalid_rows, c.errors, c.warnings), (2, 1, 1, 0));
    /// ```
    pub fn counts(&self) -> ValidationCounts {
        let (mut errors, mut warnings) = (0, 0);
        for i in self.issues() {
            match i.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
        }
        ValidationCounts {
            rows: self.rows.len() as u64,
            invalid_rows: self.rows.iter().filter(|r| r.error).count() as u64,
            errors,
            warnings,
        }
    }

    /// The report as text: a summary line, then one line per issue
    /// (`line 5, email: missing required value [missing_value]`).
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId,email\na,\n", None);
    /// assert_eq!(
    ///     v.render_text(),
    ///     "1 rows: 0 valid, 1 with errors; 1 errors, 0 warnings\nline 2, email: missing required value [missing_value]\n"
    /// );
    /// ```
    pub fn render_text(&self) -> String {
        let c = self.counts();
        let mut out = format!(
            "{} rows: {} valid, {} with errors; {} errors, {} warnings\n",
            c.rows,
            c.rows - c.invalid_rows,
            c.invalid_rows,
            c.errors,
            c.warnings
        );
        if let Some(read) = self.input.describe() {
            out.push_str(&read);
            out.push('\n');
        }
        for i in self.issues() {
            out.push_str(&i.to_string());
            out.push('\n');
        }
        out
    }

    /// The validation as pretty-printed JSON (see the type's docs for the shape).
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"userId,email\na,bad\n", None);
    /// let json = v.to_json();
    /// assert!(json.contains("\"code\": \"invalid_email\""));
    /// ```
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> String {
        // Serializing plain data to a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the failed rows of `source` (the same bytes that were validated)
    /// as CSV: the original columns plus `line` and `error`, every cell
    /// neutralized against spreadsheet formulas. Ready to fix and upload again.
    ///
    /// # Errors
    ///
    /// [`crate::Error`] when writing fails.
    ///
    /// ```
    /// let file = b"userId,email\na,bad\nb,b@x.io\n";
    /// let v = user_import::Importer::new("t").validate(file, None);
    /// let mut out = Vec::new();
    /// v.write_error_csv(file, &mut out)?;
    /// assert_eq!(
    ///     String::from_utf8(out).unwrap(),
    ///     "userId,email,line,error\na,bad,2,invalid email address: no @ [invalid_email]\n"
    /// );
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn write_error_csv(
        &self,
        source: &[u8],
        out: impl std::io::Write,
    ) -> Result<(), crate::error::Error> {
        let failed = self.rows.iter().filter(|r| r.error).map(|r| {
            let msgs = self
                .row_issues(r.line)
                .iter()
                .filter(|i| i.is_error())
                .map(error_text);
            (r.line, msgs.collect::<Vec<_>>().join("; "))
        });
        error_csv::write_error_rows(source, &self.input, &self.limits, failed, out)
    }
}

/// An error's text in the error CSV: the column, the message and the code.
pub(crate) fn error_text(i: &Issue) -> String {
    match &i.column {
        Some(c) if !matches!(i.code, Code::InvalidEmail | Code::MissingValue) || c.is_empty() => {
            format!("{c}: {} [{}]", i.message, i.code)
        }
        _ => format!("{} [{}]", i.message, i.code),
    }
}

/// The slice of `issues` (sorted by line) on `line`.
pub(crate) fn issues_of_line(issues: &[Issue], line: u64) -> &[Issue] {
    let start = issues.partition_point(|i| i.line.unwrap_or(0) < line);
    let end = issues.partition_point(|i| i.line.unwrap_or(0) <= line);
    &issues[start..end]
}

/// Counts of a [`Validation`].
///
/// ```
/// let c = user_import::Importer::new("t").validate(b"", None).counts();
/// assert_eq!(c.rows, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ValidationCounts {
    /// Data rows.
    pub rows: u64,
    /// Rows with at least one error.
    pub invalid_rows: u64,
    /// Errors (file and rows).
    pub errors: u64,
    /// Warnings (file and rows).
    pub warnings: u64,
}

/// What a validation runs under: the profile, and how many threads it may
/// use (an execution setting, not saved with the profile).
#[derive(Clone, Copy)]
pub(crate) struct Settings<'a> {
    pub profile: &'a Profile,
    pub threads: usize,
}

impl Validation {
    /// A validation with nothing read yet.
    fn empty(tenant: &str, profile: &Profile) -> Validation {
        Validation {
            input: InputInfo {
                format: Format::Csv,
                encoding: Encoding::Utf8,
                delimiter: profile.delimiter,
                part: None,
                preamble: Vec::new(),
                preset: profile.preset.clone(),
                columns: Vec::new(),
                name: None,
                sha256: String::new(),
                bytes: 0,
            },
            tenant: tenant.to_owned(),
            columns: Vec::new(),
            field_columns: Vec::new(),
            file_issues: Vec::new(),
            rows: Vec::new(),
            row_issues: Vec::new(),
            key: profile.key,
            limits: profile.limits,
            ids: None,
            started: None,
        }
    }
}

/// Runs reading and validation.
pub(crate) fn run(
    settings: Settings<'_>,
    tenant: &str,
    catalog: Option<&Catalog>,
    bytes: std::borrow::Cow<'_, [u8]>,
    name: Option<&str>,
) -> Validation {
    let started = std::time::SystemTime::now();
    // The file's hash is worked out beside the reading when a second
    // thread is allowed.
    let (sha256, (mut v, header, lines)) = if settings.threads > 1 {
        crate::par::join(
            || input::sha256_hex(&bytes),
            || read(settings, tenant, catalog, &bytes, name),
        )
    } else {
        (
            input::sha256_hex(&bytes),
            read(settings, tenant, catalog, &bytes, name),
        )
    };
    v.input.bytes = bytes.len() as u64;
    // The rows hold what they need of the file: a file handed over is freed
    // here, before the file-wide checks build their indexes beside the rows.
    drop(bytes);
    check(&mut v, settings, header, lines);
    v.input.sha256 = sha256;
    v.input.name = name.map(str::to_owned);
    v.started = Some(started);
    v
}

/// A workbook's text lines and the sheet's row numbers they come from.
type LineMap = Vec<(u64, u64)>;

/// Reads `bytes` and checks every record: the validation so far, the
/// header, and the line map of a workbook.
fn read(
    settings: Settings<'_>,
    tenant: &str,
    catalog: Option<&Catalog>,
    bytes: &[u8],
    name: Option<&str>,
) -> (Validation, Option<Header>, Option<LineMap>) {
    let mut v = Validation::empty(tenant, settings.profile);
    let mut lines = None;
    let header = read_rows(&mut v, settings, tenant, catalog, bytes, name, &mut lines);
    (v, header, lines)
}

/// Checks the file as a whole, puts a workbook's rows on its sheet's row
/// numbers, and orders the issues.
fn check(
    v: &mut Validation,
    settings: Settings<'_>,
    header: Option<Header>,
    lines: Option<LineMap>,
) {
    if let Some(header) = header.filter(|_| !v.file_error() && !v.rows.is_empty()) {
        file_checks(v, settings, &header);
    }
    if let Some(map) = lines {
        // A workbook: report the sheet's row numbers.
        let line = |l: u64| match map.binary_search_by_key(&l, |e| e.0) {
            Ok(i) => map[i].1,
            Err(i) => map.get(i).or(map.last()).map_or(l, |e| e.1),
        };
        for r in &mut v.rows {
            r.line = line(r.line);
        }
        for i in v.row_issues.iter_mut().chain(&mut v.file_issues) {
            i.line = i.line.map(line);
        }
    }
    sort_issues(&mut v.file_issues, &v.columns);
    sort_issues(&mut v.row_issues, &v.columns);
}

fn read_rows(
    v: &mut Validation,
    settings: Settings<'_>,
    tenant: &str,
    catalog: Option<&Catalog>,
    bytes: &[u8],
    name: Option<&str>,
    lines: &mut Option<Vec<(u64, u64)>>,
) -> Option<Header> {
    let known = known_header(settings.profile);
    let opened = match reader::open(bytes, name, &open_options(settings.profile, &known)) {
        Ok(o) => o,
        Err(refused) => {
            if let Some((format, encoding, part)) = refused.format {
                v.input.format = format;
                v.input.encoding = encoding;
                v.input.part = part;
            }
            v.input.preamble = refused.preamble;
            if let Some(d) = refused.delimiter {
                v.input.delimiter = input::delimiter_from_byte(d);
            }
            v.file_issues.push(refused.issue);
            return None;
        }
    };
    *lines = opened.lines.clone();
    let mut reading = Reading::begin(v, settings, tenant, catalog, &opened);
    let body = opened.body(settings.profile.limits);
    reading
        .body(v, &body, Some(0))
        .is_continue()
        .then(|| reading.end(v))
}

/// Whether a header cell names a column the profile reads.
fn known_header(profile: &Profile) -> impl Fn(&str) -> bool + '_ {
    |h: &str| header::is_known(h, &profile.mapping, &profile.custom)
}

/// How the profile says to open a file.
fn open_options<'a>(profile: &'a Profile, known: &'a dyn Fn(&str) -> bool) -> reader::Options<'a> {
    reader::Options {
        encoding: profile.encoding,
        sheet: profile.sheet.as_deref(),
        limits: profile.limits,
        delimiter: profile.delimiter,
        preamble: profile.preamble,
        known,
    }
}

/// Reading a file's records once its header is read: what checking them
/// needs, kept from one block of the body to the next.
struct Reading<'a> {
    settings: Settings<'a>,
    tenant: &'a str,
    header: Header,
    index: Option<crate::catalog::CatalogIndex<'a>>,
    /// The required columns the header lacks.
    missing: Vec<Issue>,
    folded_header: Vec<String>,
    /// The columns that take a value with line breaks.
    line_breaks: Vec<bool>,
    /// How each column's values are read, where the profile says.
    value_maps: Vec<Option<&'a crate::profile::ValueMap>>,
    workbook: bool,
}

impl<'a> Reading<'a> {
    /// Takes what `opened` found into `v`, and resolves the header.
    fn begin(
        v: &mut Validation,
        settings: Settings<'a>,
        tenant: &'a str,
        catalog: Option<&'a Catalog>,
        opened: &reader::Opened<'_>,
    ) -> Reading<'a> {
        let profile = settings.profile;
        v.input.format = opened.format;
        v.input.encoding = opened.encoding;
        v.input.part = opened.part.clone();
        v.input.preamble = opened.preamble.clone();
        v.input.delimiter = input::delimiter_from_byte(opened.delimiter);
        let workbook = opened.lines.is_some();

        let header = header::resolve(
            &opened.header,
            &profile.mapping,
            &profile.custom,
            &mut v.file_issues,
        );
        // Required columns matter for rows that create or update users; a file of
        // DELETE rows only needs what identifies the users.
        let missing = header::missing_columns(&header, &profile.required, &profile.custom);
        v.columns = header.names.clone();
        v.input.columns = header
            .names
            .iter()
            .zip(&header.targets)
            .map(|(name, target)| input::ColumnRead {
                column: name.clone(),
                read_as: match target {
                    header::Target::Field(f) => Some(f.header().to_owned()),
                    header::Target::Custom(i) => profile.custom.get(*i).map(|a| a.name.clone()),
                    header::Target::Ignore => None,
                },
            })
            .collect();
        v.field_columns = Field::ALL
            .iter()
            .map(|&f| header.name_of(f).to_owned())
            .collect();
        let folded_header: Vec<String> = header.names.iter().map(|n| fold_header(n)).collect();
        // Which columns take a value with line breaks: those the import
        // ignores (notes), and custom attributes that say so.
        let line_breaks: Vec<bool> = header
            .targets
            .iter()
            .map(|t| match t {
                header::Target::Ignore => true,
                header::Target::Custom(i) => profile.custom.get(*i).is_some_and(|a| a.multiline),
                _ => false,
            })
            .collect();
        let value_maps = header
            .names
            .iter()
            .map(|n| {
                let folded = fold_header(n);
                profile
                    .values
                    .iter()
                    .find(|m| fold_header(&m.column) == folded)
            })
            .collect();
        Reading {
            settings,
            tenant,
            header,
            index: catalog.map(Catalog::index),
            missing,
            folded_header,
            line_breaks,
            value_maps,
            workbook,
        }
    }

    /// Checks the records of `source` (the whole body, or the next block of
    /// it) and adds its rows and issues to `v`. `Break` when the rows are
    /// over the limit or a quote merged rows: `v` has no rows then, and the
    /// file's error says why. `left` is how many rows may come after this
    /// block's (`None`: not known), so the rows grow by enough at once.
    fn body(
        &mut self,
        v: &mut Validation,
        source: &reader::Body<'_>,
        left: Option<usize>,
    ) -> ControlFlow<()> {
        let limits = self.settings.profile.limits;
        let checker = row::RowChecker {
            profile: self.settings.profile,
            header: &self.header,
            tenant: self.tenant,
            catalog: self.index.as_ref(),
        };
        let body = Body {
            source,
            value_maps: &self.value_maps,
            checker: &checker,
            folded_header: &self.folded_header,
            line_breaks: &self.line_breaks,
            workbook: self.workbook,
        };
        let threads = self.settings.threads.clamp(1, 16);
        let threads = if threads > 1 && source.len() >= crate::par::from::READ_BYTES {
            threads
        } else {
            1
        };
        // The last piece is read on this thread, the others on new ones.
        let chunks = crate::par::map(source.pieces(threads), |piece| {
            body.read(piece, limits.rows)
        });
        v.row_issues
            .reserve(chunks.iter().map(|c| c.issues.len()).sum());
        let here: usize = chunks.iter().map(|c| c.rows.count).sum();
        let total = (v.rows.len() + here).saturating_add(left.unwrap_or(usize::MAX));
        for mut chunk in chunks {
            // The first block's rows become the file's (trimmed to size, not
            // copied); each later block is appended and freed. The file's rows
            // grow by half at least when they must (a few reallocations, not one
            // per block, with an allocator that copies), never past the total.
            for mut block in chunk.rows.blocks.drain(..) {
                if v.rows.capacity() == 0 {
                    block.shrink_to_fit();
                    v.rows = block;
                    continue;
                }
                if v.rows.capacity() - v.rows.len() < block.len() {
                    let left = total.saturating_sub(v.rows.len());
                    v.rows
                        .reserve_exact(block.len().max((v.rows.len() / 2).min(left)));
                }
                v.rows.append(&mut block);
            }
            v.row_issues.append(&mut chunk.issues);
            // The first row past the limit, counted over the whole file: a
            // piece stops after `limit` rows of its own, so either the merged
            // rows pass the limit, or this piece alone reached it, or the
            // record that stopped it with merged rows is past the limit (as
            // one piece would find: the limit is checked first).
            let past = if v.rows.len() as u64 > limits.rows {
                v.rows.get(limits.rows as usize).map(|r| r.line)
            } else {
                chunk.over_limit.or(chunk
                    .fatal
                    .as_ref()
                    .filter(|_| v.rows.len() as u64 >= limits.rows)
                    .map(|f| f.0))
            };
            if let Some(line) = past {
                v.file_issues.push(over_limit(limits.rows, line));
                v.rows.clear();
                v.row_issues.clear();
                return ControlFlow::Break(());
            }
            // Rows merged by a stray quote: nothing of the file can be trusted
            // to be the rows it looks like, so none is imported.
            if let Some((_, fatal)) = chunk.fatal {
                v.file_issues.push(fatal);
                v.rows.clear();
                v.row_issues.clear();
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// The file's issues once every record is read; gives back the header.
    fn end(self, v: &mut Validation) -> Header {
        if v.rows.is_empty() && !v.file_error() {
            v.file_issues
                .push(Issue::error(Code::FileEmpty, "file is empty"));
        }
        if v.rows.is_empty() || v.rows.iter().any(|r| r.action == Action::Upsert) {
            v.file_issues.extend(self.missing);
        }
        self.header
    }
}

fn over_limit(rows: u64, line: u64) -> Issue {
    Issue::error(
        Code::LimitExceeded,
        format!("the file has more than {rows} rows (the limit)"),
    )
    .at(line)
}

/// The rows of one piece of the body, read on one thread.
struct Chunk {
    rows: Blocks,
    issues: Vec<Issue>,
    /// The line of the first row past the row limit, if the piece has one.
    over_limit: Option<u64>,
    /// Quoting that merged rows: the file is rejected.
    /// Its line, and the issue.
    fatal: Option<(u64, Issue)>,
}

/// A piece's rows, in blocks of at most [`Blocks::ROWS`]: the blocks are
/// appended to the file's rows one at a time and each is freed once
/// appended, so what is written twice over at a time is one block, not a
/// whole piece (the file's rows may have room reserved for half as many
/// again, which takes no memory until it is written).
struct Blocks {
    blocks: Vec<Vec<Row>>,
    /// The rows in all blocks.
    count: usize,
    /// How many rows the piece is expected to hold (its line ends).
    expected: usize,
}

impl Blocks {
    const ROWS: usize = 1 << 15;

    fn new(expected: usize) -> Blocks {
        Blocks {
            blocks: Vec::new(),
            count: 0,
            expected,
        }
    }

    fn push(&mut self, row: Row) {
        match self.blocks.last_mut() {
            Some(block) if block.len() < Blocks::ROWS => block.push(row),
            _ => {
                let left = self.expected.saturating_sub(self.count);
                let mut block = Vec::with_capacity(left.clamp(1, Blocks::ROWS));
                block.push(row);
                self.blocks.push(block);
            }
        }
        self.count += 1;
    }
}

/// What checking the body's records needs, shared by the threads.
struct Body<'a> {
    source: &'a reader::Body<'a>,
    checker: &'a row::RowChecker<'a>,
    folded_header: &'a [String],
    /// The columns that take a value with line breaks.
    line_breaks: &'a [bool],
    /// How each column's values are read, where the profile says.
    value_maps: &'a [Option<&'a crate::profile::ValueMap>],
    /// Whether the text was converted from a workbook (its lines are not
    /// the lines an administrator sees).
    workbook: bool,
}

impl Body<'_> {
    fn takes_line_breaks(&self, column: usize) -> bool {
        self.line_breaks.get(column).copied().unwrap_or(true)
    }

    /// Checks the records of `piece`, stopping after `max_rows` rows.
    fn read(&self, piece: reader::Piece, max_rows: u64) -> Chunk {
        let checker = self.checker;
        let header = checker.header;
        let profile = checker.profile;
        let width = header.names.len();
        // Roughly one row per line.
        let lines = self.source.lines_in(piece);
        let mut chunk = Chunk {
            rows: Blocks::new(
                lines.min(
                    usize::try_from(max_rows)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1),
                ),
            ),
            issues: Vec::new(),
            over_limit: None,
            fatal: None,
        };
        let mut builder = UserBuilder::default();
        let mut mapped: Vec<String> = vec![String::new(); width];
        let mut spare: Vec<Option<&str>> = Vec::with_capacity(width);
        let maps = self.value_maps;
        let any_map = maps.iter().any(Option::is_some);
        self.source.for_each(piece, width, |rec| {
            if chunk.rows.count as u64 >= max_rows {
                chunk.over_limit = Some(rec.line);
                return ControlFlow::Break(());
            }
            let mut sink = row::Sink {
                line: rec.line,
                issues: &mut chunk.issues,
                error: false,
            };
            if let Some(problem) = rec.problem.filter(|p| p.is_fatal()) {
                chunk.fatal = Some((
                    rec.line,
                    reader::problem_issue(problem, &header.names, rec.line),
                ));
                return ControlFlow::Break(());
            }
            // A value with line breaks in a column that takes one line: the
            // row's error, unless its delimiters make it look like rows that
            // a stray quote merged (in a workbook, a cell is a cell).
            for m in rec.multiline {
                if self.takes_line_breaks(m.column) {
                    continue;
                }
                if m.delimiter && !self.workbook {
                    chunk.fatal = Some((
                        rec.line,
                        reader::merged_rows(&header.names, m.column, m.first, Some(m.last)),
                    ));
                    return ControlFlow::Break(());
                }
                let why = if self.workbook {
                    "the value holds a line break, and this column takes one line".to_owned()
                } else {
                    format!(
                        "the value spans lines {} to {}, and this column takes one line",
                        m.first, m.last
                    )
                };
                sink.push(
                    Issue::error(Code::InvalidValue, why)
                        .column(reader::column_name(&header.names, m.column)),
                );
            }
            if let Some(problem) = rec.problem {
                sink.push(reader::problem_issue(problem, &header.names, rec.line));
            } else if rec.field_count != width
                && !(profile.short_rows && rec.field_count < width)
            {
                sink.push(Issue::error(
                    Code::MalformedRow,
                    format!(
                        "the row has {} cells but the header has {}",
                        rec.field_count, width
                    ),
                ));
            }
            for &(col, valid_up_to) in rec.bad {
                sink.push(
                    Issue::error(
                        Code::InvalidEncoding,
                        format!(
                            "not valid UTF-8 (byte {} of the cell); save the file as UTF-8, or read it as Windows-1252 if it came from an older Excel",
                            valid_up_to + 1
                        ),
                    )
                    .column(header.names.get(col).cloned().unwrap_or_default()),
                );
            }
            let bad_encoding = !rec.bad.is_empty();
            let mut cells = reader::recycle(std::mem::take(&mut spare));
            cells.extend_from_slice(rec.cells);
            // Said above: the checks do not see the value again.
            for m in rec.multiline {
                if !self.takes_line_breaks(m.column)
                    && let Some(cell) = cells.get_mut(m.column)
                {
                    *cell = None;
                }
            }
            // The profile's value maps: each mapped cell is read as the map
            // says (the words first, all columns, then the cells point at
            // them).
            if any_map {
                for (col, map) in maps.iter().enumerate() {
                    if let (Some(map), Some(Some(cell))) = (map, cells.get(col)) {
                        mapped[col] = map.read(cell);
                    }
                }
                for (col, map) in maps.iter().enumerate() {
                    if map.is_some()
                        && let Some(cell @ Some(_)) = cells.get_mut(col)
                    {
                        *cell = Some(mapped[col].as_str());
                    }
                }
            }
            // A short row the profile accepts: the missing cells are blank.
            if profile.short_rows && cells.len() < width {
                cells.resize(width, Some(""));
            }
            let structural = sink.error;
            let repeats_header = !structural
                && !bad_encoding
                && width > 1
                && cells
                    .iter()
                    .zip(self.folded_header)
                    .all(|(c, h)| c.is_some_and(|c| folds_to(c, h)));
            let out = if structural || repeats_header {
                if repeats_header {
                    sink.push(Issue::error(
                        Code::MalformedRow,
                        "this row repeats the header (were two files joined?)",
                    ));
                }
                // Keep the key for the report, nothing else.
                if let Some(k) = header
                    .column_of(profile.key.field())
                    .and_then(|c| cells.get(c).copied().flatten())
                {
                    builder.put(profile.key.field(), k);
                }
                row::RowOut {
                    action: Action::Upsert,
                    notify: false,
                    error: true,
                    edits: Vec::new(),
                }
            } else {
                checker.check(&cells, &mut builder, &mut sink)
            };
            let error = out.error || sink.error;
            chunk.rows.push(Row {
                line: rec.line,
                action: out.action,
                notify: out.notify,
                user: builder.take(),
                error,
                edits: (!out.edits.is_empty()).then(|| Box::new(Edits(out.edits))),
            });
            spare = reader::recycle(cells);
            ControlFlow::Continue(())
        });
        chunk
    }
}

fn file_checks(v: &mut Validation, settings: Settings<'_>, header: &Header) {
    let profile = settings.profile;
    let key_field = profile.key.field();
    let key_col = header.name_of(key_field).to_owned();
    let email_col = header.name_of(Field::Email).to_owned();
    let reports_col = header.name_of(Field::ReportsTo).to_owned();
    // The key's index and the emails' are built side by side when asked.
    let rows = &v.rows;
    let build_keys = || file::index_rows(rows, key_field, |_| true);
    let build_emails = || {
        (key_field != Field::Email)
            .then(|| file::index_rows(rows, Field::Email, |r| r.action == Action::Upsert))
    };
    let (keys, emails) = if settings.threads > 1 && rows.len() >= crate::par::from::FILE_CHECK_ROWS
    {
        let (emails, keys) = crate::par::join(build_emails, build_keys);
        (keys, emails)
    } else {
        (build_keys(), build_emails())
    };
    file::duplicates(
        &mut v.rows,
        &keys,
        key_field,
        Code::DuplicateKey,
        &key_col,
        &mut v.row_issues,
    );
    if let Some(emails) = emails {
        file::duplicates(
            &mut v.rows,
            &emails,
            Field::Email,
            Code::DuplicateEmail,
            &email_col,
            &mut v.row_issues,
        );
    }
    // reportsTo names a user id, whatever the key.
    let ids = if key_field == Field::UserId {
        keys
    } else {
        // With another key, a user id is still one user's: two rows may not
        // share it either.
        let ids = file::index_rows(&v.rows, Field::UserId, |_| true);
        let id_col = header.name_of(Field::UserId).to_owned();
        file::duplicates(
            &mut v.rows,
            &ids,
            Field::UserId,
            Code::DuplicateKey,
            &id_col,
            &mut v.row_issues,
        );
        ids
    };
    file::cycles(
        &mut v.rows,
        &ids,
        Field::UserId,
        &reports_col,
        &mut v.row_issues,
        settings.threads.clamp(1, 16),
    );
    v.ids = Some(ids);
}
