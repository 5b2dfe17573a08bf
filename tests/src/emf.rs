//! A reader of CloudWatch's Embedded Metric Format that holds a line to the
//! format's specification (the document structure, its members and limits),
//! independent of the agent's writer: what CloudWatch Logs would refuse to
//! turn into metrics, it refuses with the rule broken.

use std::collections::BTreeMap;

use serde_json::Value;

/// The units a metric definition may name.
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];
/// A log event's largest size.
const MAX_EVENT_BYTES: usize = 256 * 1024;
const MAX_METRICS: usize = 100;
const MAX_DIMENSIONS: usize = 30;

/// One directive of a line, with the values it points at.
#[derive(Clone, Debug, PartialEq)]
pub struct Directive {
    pub namespace: String,
    pub dimension_sets: Vec<Vec<String>>,
    /// Each metric's name and unit (`None` when the line names none).
    pub metrics: Vec<(String, Option<String>)>,
}

/// A line that CloudWatch would turn into metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// `_aws.Timestamp`, milliseconds since the epoch.
    pub timestamp_ms: u64,
    pub directives: Vec<Directive>,
    /// Every dimension's value, by key.
    pub dimensions: BTreeMap<String, String>,
    /// Every metric's value, by name.
    pub values: BTreeMap<String, f64>,
    /// The line's size in bytes.
    pub bytes: usize,
}

impl Line {
    /// Reads `text`, one log event, by the format's rules; `Err` names the rule broken.
    pub fn parse(text: &str) -> Result<Line, String> {
        if text.len() > MAX_EVENT_BYTES {
            return Err(format!("{} bytes, more than a log event holds", text.len()));
        }
        // Nothing before or after the object: the whole event is one JSON object.
        let root: Value =
            serde_json::from_str(text).map_err(|e| format!("not one JSON object: {e}"))?;
        let root = root.as_object().ok_or("the root is not an object")?;
        let aws = root
            .get("_aws")
            .and_then(Value::as_object)
            .ok_or("no _aws object")?;
        let timestamp_ms = aws
            .get("Timestamp")
            .and_then(Value::as_u64)
            .ok_or("_aws.Timestamp is not a whole number")?;
        let directives = aws
            .get("CloudWatchMetrics")
            .and_then(Value::as_array)
            .ok_or("_aws.CloudWatchMetrics is not an array")?;
        let mut line = Line {
            timestamp_ms,
            directives: Vec::new(),
            dimensions: BTreeMap::new(),
            values: BTreeMap::new(),
            bytes: text.len(),
        };
        for directive in directives {
            let read = line.directive(directive, root)?;
            line.directives.push(read);
        }
        Ok(line)
    }

    /// One MetricDirective, its target members read from `root`.
    fn directive(
        &mut self,
        directive: &Value,
        root: &serde_json::Map<String, Value>,
    ) -> Result<Directive, String> {
        let directive = directive
            .as_object()
            .ok_or("a directive is not an object")?;
        let namespace = directive
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("a directive has no Namespace string")?;
        if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with("AWS/") {
            return Err(format!(
                "namespace {namespace:?} is not one CloudWatch takes"
            ));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("a directive has no Dimensions array")?;
        let mut dimension_sets = Vec::new();
        for set in sets {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > MAX_DIMENSIONS {
                return Err(format!("a dimension set of {} keys", set.len()));
            }
            let mut keys = Vec::new();
            for key in set {
                let key = key.as_str().ok_or("a dimension key is not a string")?;
                let value = root
                    .get(key)
                    .ok_or_else(|| format!("dimension {key} is not a member of the root"))?
                    .as_str()
                    .ok_or_else(|| format!("dimension {key}'s value is not a string"))?;
                if value.is_empty() || value.len() > 1024 {
                    return Err(format!("dimension {key}'s value has {} bytes", value.len()));
                }
                self.dimensions.insert(key.to_string(), value.to_string());
                keys.push(key.to_string());
            }
            dimension_sets.push(keys);
        }
        let definitions = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("a directive has no Metrics array")?;
        if definitions.len() > MAX_METRICS {
            return Err(format!("{} metric definitions", definitions.len()));
        }
        let mut metrics = Vec::new();
        for definition in definitions {
            let definition = definition
                .as_object()
                .ok_or("a metric definition is not an object")?;
            let name = definition
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric definition has no Name string")?;
            if name.is_empty() || name.len() > 255 {
                return Err(format!("metric name {name:?} is not 1 to 255 characters"));
            }
            let unit = match definition.get("Unit") {
                None => None,
                Some(unit) => {
                    let unit = unit.as_str().ok_or("a Unit is not a string")?;
                    if !UNITS.contains(&unit) {
                        return Err(format!("{name}'s unit {unit:?} is not a CloudWatch unit"));
                    }
                    Some(unit.to_string())
                }
            };
            if let Some(resolution) = definition.get("StorageResolution")
                && resolution != 1
                && resolution != 60
            {
                return Err(format!("{name}'s StorageResolution is {resolution}"));
            }
            let value = root
                .get(name)
                .ok_or_else(|| format!("metric {name} is not a member of the root"))?;
            let value = match value {
                Value::Number(n) => n.as_f64().ok_or("a number out of range")?,
                Value::Array(values) if !values.is_empty() && values.len() <= 100 => {
                    return Err(format!("{name} is an array: the agent writes one value"));
                }
                other => return Err(format!("{name}'s value {other} is not a number")),
            };
            self.values.insert(name.to_string(), value);
            metrics.push((name.to_string(), unit));
        }
        Ok(Directive {
            namespace: namespace.to_string(),
            dimension_sets,
            metrics,
        })
    }
}

/// The agent's metrics lines among its output lines, each read by the rules.
pub fn lines(output: &[String]) -> Vec<Result<Line, String>> {
    output
        .iter()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| Line::parse(l))
        .collect()
}

/// [`lines`], every one valid: a line that breaks a rule panics naming it.
pub fn valid_lines(output: &[String]) -> Vec<Line> {
    lines(output)
        .into_iter()
        .map(|line| line.unwrap_or_else(|rule| panic!("a metrics line breaks a rule: {rule}")))
        .collect()
}
