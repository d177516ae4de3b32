//! Creating the tables and queues of `template.yaml` on the local servers (DynamoDB Local and the
//! SQS server). The template is compiled in, so what runs locally is what deploys.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Deserialize;
use serde_norway::Value;

use paygate::aws::Clients;
use paygate::config::Config;

/// The SAM template this build was made from.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("{0}")]
    Aws(String),
}

fn aws_err(e: impl std::error::Error + 'static) -> LocalError {
    LocalError::Aws(paygate::aws::error_chain(&e))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableProps {
    pub attribute_definitions: Vec<AttrDef>,
    pub key_schema: Vec<KeyElem>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<Gsi>,
    pub stream_specification: Option<StreamSpec>,
    pub time_to_live_specification: Option<TtlSpec>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AttrDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElem {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Gsi {
    pub index_name: String,
    pub key_schema: Vec<KeyElem>,
    pub projection: ProjectionProps,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionProps {
    pub projection_type: String,
    /// With `INCLUDE`: the attributes projected besides the keys.
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpec {
    pub stream_view_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlSpec {
    pub attribute_name: String,
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueProps {
    pub visibility_timeout: Option<u32>,
    pub message_retention_period: Option<u32>,
    pub redrive_policy: Option<RedrivePolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedrivePolicy {
    /// `!GetAtt OtherQueue.Arn`
    pub dead_letter_target_arn: Value,
    pub max_receive_count: u32,
}

/// The tables and queues that `template.yaml` defines, by logical id.
#[derive(Debug, Default)]
pub struct Resources {
    pub tables: Vec<(String, TableProps)>,
    pub queues: Vec<(String, QueueProps)>,
}

/// Every `!Ref P` in `value` that names a parameter becomes that parameter's default (a stack
/// parameter such as `IngestQueueVisibilitySeconds`, locally what the template defaults it to).
fn parameter_defaults(value: &mut Value, parameters: &serde_norway::Mapping) {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => {
            if let Some(default) = tagged.value.as_str().and_then(|p| parameters.get(p)).and_then(|p| p.get("Default")) {
                *value = default.clone();
            }
        }
        Value::Mapping(m) => m.values_mut().for_each(|v| parameter_defaults(v, parameters)),
        Value::Sequence(s) => s.iter_mut().for_each(|v| parameter_defaults(v, parameters)),
        _ => {}
    }
}

impl Resources {
    pub fn from_template(yaml: &str) -> Result<Self, LocalError> {
        let doc: Value = serde_norway::from_str(yaml).map_err(|e| LocalError::Template(e.to_string()))?;
        let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or_else(|| LocalError::Template("no Resources".into()))?;
        let parameters = doc.get("Parameters").and_then(Value::as_mapping);
        let mut out = Resources::default();
        for (id, res) in resources {
            let id = id.as_str().unwrap_or_default().to_owned();
            let mut props = res.get("Properties").cloned().unwrap_or(Value::Null);
            if let Some(parameters) = parameters {
                parameter_defaults(&mut props, parameters);
            }
            let bad = |e: serde_norway::Error| LocalError::Template(format!("{id}: {e}"));
            match res.get("Type").and_then(Value::as_str) {
                Some("AWS::DynamoDB::Table") => out.tables.push((id.clone(), serde_norway::from_value(props).map_err(bad)?)),
                Some("AWS::SQS::Queue") => out.queues.push((id.clone(), serde_norway::from_value(props).map_err(bad)?)),
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn table(&self, logical_id: &str) -> Option<&TableProps> {
        self.tables.iter().find(|(id, _)| id == logical_id).map(|(_, t)| t)
    }

    pub fn queue(&self, logical_id: &str) -> Option<&QueueProps> {
        self.queues.iter().find(|(id, _)| id == logical_id).map(|(_, q)| q)
    }
}

/// The logical id that `!GetAtt Queue.Arn` (or `Fn::GetAtt: [Queue, Arn]`) names.
fn get_att_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "GetAtt" || t.tag == "!GetAtt" => t.value.as_str().and_then(|s| s.strip_suffix(".Arn")).map(str::to_owned),
        Value::Mapping(m) => m.get("Fn::GetAtt").and_then(Value::as_sequence).and_then(|s| s.first()).and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Local name of each resource: the defaults of `Config`, optionally with a suffix (tests that
/// need private queues).
pub fn default_name(logical_id: &str) -> String {
    Config::local_name(logical_id).map(str::to_owned).unwrap_or_else(|| logical_id.to_lowercase())
}

/// What was created: queue URLs by logical id.
#[derive(Debug, Default, Clone)]
pub struct Provisioned {
    pub queue_urls: HashMap<String, String>,
}

/// Creates (or finds) every table and queue of the template. Idempotent.
pub async fn provision(clients: &Clients, name: &(dyn Fn(&str) -> String + Sync)) -> Result<Provisioned, LocalError> {
    let resources = Resources::from_template(TEMPLATE)?;
    for (id, t) in &resources.tables {
        create_table(&clients.dynamodb, &name(id), t).await?;
    }
    let mut out = Provisioned::default();
    // Queues without a redrive policy first: they are the dead-letter targets of the others.
    let mut queues: Vec<_> = resources.queues.iter().collect();
    queues.sort_by_key(|(_, q)| q.redrive_policy.is_some());
    for (id, q) in queues {
        let mut attrs = HashMap::new();
        if let Some(v) = q.visibility_timeout {
            attrs.insert(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let Some(v) = q.message_retention_period {
            attrs.insert(QueueAttributeName::MessageRetentionPeriod, v.to_string());
        }
        if let Some(r) = &q.redrive_policy {
            let target = get_att_target(&r.dead_letter_target_arn)
                .ok_or_else(|| LocalError::Template(format!("{id}: deadLetterTargetArn must be !GetAtt Queue.Arn")))?;
            let url = out.queue_urls.get(&target).ok_or_else(|| LocalError::Template(format!("{id}: no queue {target}")))?;
            let arn = queue_arn(&clients.sqs, url).await?;
            let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": r.max_receive_count});
            attrs.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let created = clients.sqs.create_queue().queue_name(name(id)).set_attributes(Some(attrs.clone())).send().await;
        let url = match created {
            Ok(c) => c.queue_url.unwrap_or_default(),
            // It exists with other attributes (the template changed): bring it in line.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_name_exists()) => {
                let url = clients.sqs.get_queue_url().queue_name(name(id)).send().await.map_err(aws_err)?.queue_url.unwrap_or_default();
                clients.sqs.set_queue_attributes().queue_url(&url).set_attributes(Some(attrs)).send().await.map_err(aws_err)?;
                url
            }
            Err(e) => return Err(aws_err(e)),
        };
        out.queue_urls.insert(id.clone(), url);
    }
    Ok(out)
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, LocalError> {
    let attrs = sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await.map_err(aws_err)?;
    attrs.attributes.and_then(|mut a| a.remove(&QueueAttributeName::QueueArn)).ok_or_else(|| LocalError::Aws(format!("no QueueArn for {url}")))
}

fn key_schema(elems: &[KeyElem]) -> Result<Vec<KeySchemaElement>, LocalError> {
    elems
        .iter()
        .map(|k| KeySchemaElement::builder().attribute_name(&k.attribute_name).key_type(KeyType::from(k.key_type.as_str())).build().map_err(aws_err))
        .collect()
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, name: &str, t: &TableProps) -> Result<(), LocalError> {
    let mut req = ddb.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest).set_key_schema(Some(key_schema(&t.key_schema)?));
    for a in &t.attribute_definitions {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .map_err(aws_err)?,
        );
    }
    for g in &t.global_secondary_indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&g.index_name)
                .set_key_schema(Some(key_schema(&g.key_schema)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(g.projection.projection_type.as_str()))
                        .set_non_key_attributes(Some(g.projection.non_key_attributes.clone()).filter(|a| !a.is_empty()))
                        .build(),
                )
                .build()
                .map_err(aws_err)?,
        );
    }
    if let Some(s) = &t.stream_specification {
        req = req.stream_specification(
            StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::from(s.stream_view_type.as_str())).build().map_err(aws_err)?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(()),
        Err(e) => return Err(aws_err(e)),
    }
    if let Some(ttl) = &t.time_to_live_specification {
        ddb.update_time_to_live()
            .table_name(name)
            .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name(&ttl.attribute_name).enabled(ttl.enabled).build().map_err(aws_err)?)
            .send()
            .await
            .map_err(aws_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_defines_every_resource_the_code_names() {
        let r = Resources::from_template(TEMPLATE).unwrap();
        for (logical, _, _) in paygate::config::RESOURCES {
            assert!(r.table(logical).is_some() || r.queue(logical).is_some(), "{logical} missing from template.yaml");
        }
        let events = r.table("EventsTable").unwrap();
        let gsis: Vec<_> = events.global_secondary_indexes.iter().map(|g| g.index_name.as_str()).collect();
        assert_eq!(gsis, ["ByType", "ByFamily"]);
        assert_eq!(events.stream_specification.as_ref().unwrap().stream_view_type, "NEW_IMAGE");
        assert_eq!(events.time_to_live_specification.as_ref().unwrap().attribute_name, "expires_at");
        let q = r.queue("DeliveryQueue").unwrap();
        let redrive = q.redrive_policy.as_ref().unwrap();
        assert_eq!(get_att_target(&redrive.dead_letter_target_arn).as_deref(), Some("DeliveryDeadLetterQueue"));
        // A setting given by a stack parameter takes the parameter's default locally.
        let ingest = r.queue("PayGateIngestQueue").unwrap();
        assert_eq!((ingest.visibility_timeout, ingest.redrive_policy.as_ref().map(|p| p.max_receive_count)), (Some(60), Some(5)));
    }
}
