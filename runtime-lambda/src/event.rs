//! Tells the two payload shapes apart: an SQS batch, or one event (an EventBridge event or a
//! bare finding, which the engine's parser classifies further).

use aws_lambda_events::sqs::SqsMessage;
use serde_json::Value;

/// The `eventSource` of SQS records.
pub const SQS_EVENT_SOURCE: &str = "aws:sqs";

/// A payload as delivered by Lambda.
#[derive(Debug)]
pub enum Delivery {
    /// One event: an EventBridge event or a bare finding.
    Single(Value),
    /// An SQS batch, whose records each carry one event in their body.
    Sqs(Batch),
}

/// The records of an SQS batch.
#[derive(Debug)]
pub struct Batch {
    /// The records, in delivery order.
    pub records: Vec<Record>,
    /// True when the queue is a FIFO queue (its ARN ends in `.fifo`).
    pub fifo: bool,
}

/// One SQS record.
#[derive(Debug)]
pub struct Record {
    /// The position of the record in `Records`, for JSON paths in messages.
    pub index: usize,
    /// The message id, which `batchItemFailures` names to fail this record alone.
    pub message_id: String,
    /// The body, or why it cannot be read.
    pub body: Result<String, String>,
}

/// Classifies a payload.
///
/// # Errors
///
/// Returns a message naming the JSON path that failed when `Records` is not a list of SQS
/// records each with a message id. A record without a usable body is not an error here: it
/// comes back with `body` set to the reason, so that only that record fails.
pub fn classify(payload: Value) -> Result<Delivery, String> {
    let Value::Object(mut object) = payload else {
        return Ok(Delivery::Single(payload));
    };
    let Some(records) = object.remove("Records") else {
        return Ok(Delivery::Single(Value::Object(object)));
    };
    let Value::Array(records) = records else {
        return Err("invalid event at `$.Records`: expected a list of SQS records".to_owned());
    };

    let mut batch = Batch {
        records: Vec::with_capacity(records.len()),
        fifo: false,
    };
    for (index, value) in records.into_iter().enumerate() {
        let path = format!("$.Records[{index}]");
        let source = value.get("eventSource").and_then(Value::as_str);
        if source != Some(SQS_EVENT_SOURCE) {
            let found = source.map_or_else(|| "none".to_owned(), |name| format!("`{name}`"));
            return Err(format!(
                "invalid event at `{path}.eventSource`: expected `{SQS_EVENT_SOURCE}`, found \
                 {found}; cordon reads GuardDuty findings from EventBridge or SQS only"
            ));
        }
        let message: SqsMessage = serde_json::from_value(value)
            .map_err(|error| format!("invalid event at `{path}`: {error}"))?;
        let message_id = match message.message_id {
            Some(id) if !id.is_empty() => id,
            _ => {
                return Err(format!(
                    "invalid event at `{path}.messageId`: missing, so the record cannot be \
                     reported alone"
                ));
            }
        };
        if message
            .event_source_arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with(".fifo"))
        {
            batch.fifo = true;
        }
        let body = message
            .body
            .ok_or_else(|| format!("invalid record at `{path}.body`: missing field"));
        batch.records.push(Record {
            index,
            message_id,
            body,
        });
    }
    Ok(Delivery::Sqs(batch))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(id: &str, body: &str) -> Value {
        json!({
            "messageId": id,
            "receiptHandle": "r",
            "body": body,
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:cordon-findings",
            "awsRegion": "eu-west-1"
        })
    }

    #[test]
    fn event_without_records_is_single() {
        let payload = json!({"detail-type": "GuardDuty Finding"});
        assert!(matches!(classify(payload).unwrap(), Delivery::Single(_)));
    }

    #[test]
    fn non_object_is_single() {
        assert!(matches!(
            classify(json!([1, 2])).unwrap(),
            Delivery::Single(_)
        ));
    }

    #[test]
    fn records_become_a_batch() {
        let payload = json!({"Records": [record("m1", "{}"), record("m2", "x")]});
        let Delivery::Sqs(batch) = classify(payload).unwrap() else {
            panic!("expected a batch");
        };
        assert!(!batch.fifo);
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.records[1].index, 1);
        assert_eq!(batch.records[1].message_id, "m2");
        assert_eq!(batch.records[1].body.as_deref(), Ok("x"));
    }

    #[test]
    fn fixture_batch_is_read() {
        let text = include_str!("../../tests/fixtures/sqs-batch.json");
        let payload: Value = serde_json::from_str(text).unwrap();
        let Delivery::Sqs(batch) = classify(payload).unwrap() else {
            panic!("expected a batch");
        };
        assert_eq!(batch.records.len(), 2);
        assert_eq!(
            batch.records[0].message_id,
            "9ba3a766-9f57-406c-ae73-3c9beb5779f2"
        );
    }

    #[test]
    fn fifo_queue_is_detected() {
        let mut first = record("m1", "{}");
        first["eventSourceARN"] = json!("arn:aws:sqs:eu-west-1:111122223333:findings.fifo");
        let Delivery::Sqs(batch) = classify(json!({"Records": [first]})).unwrap() else {
            panic!("expected a batch");
        };
        assert!(batch.fifo);
    }

    #[test]
    fn missing_body_fails_the_record_only() {
        let mut first = record("m1", "{}");
        first.as_object_mut().unwrap().remove("body");
        let Delivery::Sqs(batch) = classify(json!({"Records": [first]})).unwrap() else {
            panic!("expected a batch");
        };
        let reason = batch.records[0].body.as_ref().unwrap_err();
        assert!(reason.contains("`$.Records[0].body`"), "{reason}");
    }

    #[test]
    fn errors_name_the_path() {
        let mut no_id = record("m1", "{}");
        no_id.as_object_mut().unwrap().remove("messageId");
        let mut sns = record("m1", "{}");
        sns["eventSource"] = json!("aws:sns");
        let mut bad_attributes = record("m1", "{}");
        bad_attributes["attributes"] = json!(3);
        let cases = [
            (json!({"Records": 3}), "`$.Records`"),
            (
                json!({"Records": [record("m0", "{}"), no_id]}),
                "`$.Records[1].messageId`",
            ),
            (json!({"Records": [sns]}), "`$.Records[0].eventSource`"),
            (json!({"Records": [bad_attributes]}), "`$.Records[0]`"),
        ];
        for (payload, path) in cases {
            let error = classify(payload).unwrap_err();
            assert!(error.contains(path), "expected {path} in: {error}");
        }
    }
}
