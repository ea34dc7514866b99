{{/* Names, labels, and the merged component list every template iterates. */}}

{{- define "fraudmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fraudmesh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The resource name of one component: (list $root "decision"). */}}
{{- define "fraudmesh.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "fraudmesh.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fraudmesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "fraudmesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fraudmesh
{{- end -}}

{{/* Selector labels of one component: (list $root "decision"). */}}
{{- define "fraudmesh.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "fraudmesh.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "fraudmesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fraudmesh.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "fraudmesh.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Deep merge of two maps given as (dict "base" … "over" …): keys of "over" win, maps merge key by
key, lists and scalars replace. Unlike sprig's merge/mergeOverwrite, false and 0 override too.
*/}}
{{- define "fraudmesh.merge" -}}
{{- $out := deepCopy .base -}}
{{- range $key, $value := .over -}}
{{- $current := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $out $key (include "fraudmesh.merge" (dict "base" $current "over" $value) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
The enabled components as YAML: name → `defaults` merged with the component's entry, checked.
Templates iterate: range $name, $c := include "fraudmesh.components" . | fromYaml
*/}}
{{- define "fraudmesh.components" -}}
{{- $out := dict -}}
{{- range $name, $entry := .Values.components -}}
{{- if or (not (hasKey $entry "enabled")) $entry.enabled -}}
{{- $c := include "fraudmesh.merge" (dict "base" $.Values.defaults "over" $entry) | fromYaml -}}
{{- if eq $c.kind "consumer" -}}
{{- $partitions := int (required (printf "components.%s.partitions is required for a consumer" $name) $c.partitions) -}}
{{- if gt (int $c.replicas) $partitions -}}
{{- fail (printf "components.%s.replicas (%v) exceeds its topic's %d partitions: extra consumers would sit idle" $name $c.replicas $partitions) -}}
{{- end -}}
{{- if and $c.autoscaling.enabled (gt (int $c.autoscaling.maxReplicas) $partitions) -}}
{{- fail (printf "components.%s.autoscaling.maxReplicas (%v) exceeds its topic's %d partitions" $name $c.autoscaling.maxReplicas $partitions) -}}
{{- end -}}
{{- else if eq $c.kind "grpc" -}}
{{- $_ := required (printf "components.%s.grpcPort is required for a gRPC component" $name) $c.grpcPort -}}
{{- if and $.Values.mtls.enabled $c.mtls.server -}}
{{- $_ := required (printf "components.%s.healthPort is required when mTLS is on (the kubelet's probe is plaintext)" $name) $c.healthPort -}}
{{- end -}}
{{- else if eq $c.kind "front" -}}
{{- $_ := required (printf "components.%s.sipPort is required for a front" $name) $c.sipPort -}}
{{- $_ := required (printf "components.%s.httpPort is required for a front (its probes use it)" $name) $c.httpPort -}}
{{- if $c.decideInProcess -}}
{{- $c = include "fraudmesh.inProcess" (list $ $c) | fromYaml -}}
{{- end -}}
{{- if and $.Values.mtls.enabled $c.mtls.server -}}
{{- $_ := required (printf "components.%s.healthPort is required when it serves mTLS (the kubelet's probe is plaintext)" $name) $c.healthPort -}}
{{- else -}}
{{- $_ := required "switchfront.httpToken.existingSecret is required: off loopback the front's HTTP endpoint needs a bearer token or mutual TLS" $.Values.switchfront.httpToken.existingSecret -}}
{{- end -}}
{{- else -}}
{{- fail (printf "components.%s.kind must be grpc, consumer or front" $name) -}}
{{- end -}}
{{- $_ := set $out $name $c -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
A front that decides in its own process, (list $root $c): its decision core reads decision's
settings, so it takes decision's `model`, `sti` and `env` (its own env wins), then its `inProcess`
entry merged over it (egress, resources, and FRAUDMESH_DECISION_TARGET emptied).
*/}}
{{- define "fraudmesh.inProcess" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
{{- $entry := required "components.decision must stay declared (it may be disabled): an in-process front takes its settings" $root.Values.components.decision -}}
{{- $decision := include "fraudmesh.merge" (dict "base" $root.Values.defaults "over" $entry) | fromYaml -}}
{{- $out := deepCopy $c -}}
{{- $_ := set $out "model" $decision.model -}}
{{- $_ := set $out "sti" $decision.sti -}}
{{- $_ := set $out "env" (include "fraudmesh.merge" (dict "base" (default dict $decision.env) "over" (default dict $c.env)) | fromYaml) -}}
{{- include "fraudmesh.merge" (dict "base" $out "over" (default dict $c.inProcess)) -}}
{{- end -}}

{{/* Whether one merged component serves (gRPC, or a front's HTTP and SIP) or calls gRPC with
mutual TLS: (list $root $c). */}}
{{- define "fraudmesh.mtlsServer" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
{{- if and $root.Values.mtls.enabled (has $c.kind (list "grpc" "front")) $c.mtls $c.mtls.server -}}true{{- end -}}
{{- end -}}
{{- define "fraudmesh.mtlsClient" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
{{- if and $root.Values.mtls.enabled $c.mtls $c.mtls.client -}}true{{- end -}}
{{- end -}}

{{/* Environment shared by every fraudmesh container (Redis and Kafka where `stores`): (list $root $c). */}}
{{- define "fraudmesh.env" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
{{- $v := $root.Values -}}
{{- if $c.stores }}
- name: FRAUDMESH_KAFKA_BOOTSTRAP
  value: {{ required "kafka.bootstrap is required" $v.kafka.bootstrap | quote }}
{{- if $v.redis.existingSecret }}
- name: FRAUDMESH_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.redis.existingSecret }}
      key: {{ $v.redis.existingSecretKey }}
{{- else }}
- name: FRAUDMESH_REDIS_URL
  value: {{ required "redis.url or redis.existingSecret is required" $v.redis.url | quote }}
{{- end }}
{{- end }}
- name: FRAUDMESH_PSEUDONYM_KEY_FILE
  value: /var/run/secrets/fraudmesh/pseudonym/{{ $v.pseudonymKey.key }}
{{- if $c.stores }}
{{- if $v.kafka.securityProtocol }}
- name: FRAUDMESH_KAFKA_SECURITY_PROTOCOL
  value: {{ $v.kafka.securityProtocol | quote }}
{{- end }}
{{- if $v.kafka.sasl.existingSecret }}
- name: FRAUDMESH_KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: FRAUDMESH_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret }}
      key: username
- name: FRAUDMESH_KAFKA_SASL_PASSWORD_FILE
  value: /var/run/secrets/fraudmesh/kafka-sasl/password
{{- end }}
{{- if $v.kafka.tls.existingSecret }}
- name: FRAUDMESH_KAFKA_CA_FILE
  value: /var/run/secrets/fraudmesh/kafka-tls/ca.crt
{{- end }}
{{- end }}
{{- if $v.tracing.otlpEndpoint }}
- name: FRAUDMESH_OTLP_ENDPOINT
  value: {{ $v.tracing.otlpEndpoint | quote }}
{{- end }}
- name: FRAUDMESH_TRACE_SAMPLE_RATIO
  value: {{ $v.tracing.sampleRatio | quote }}
- name: NUMBA_CACHE_DIR
  value: /var/cache/numba
{{- end -}}

{{/* Environment specific to one component, then the global and component `env` maps. */}}
{{- define "fraudmesh.componentEnv" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
- name: FRAUDMESH_METRICS_BIND
  value: {{ $root.Values.listenAddress | quote }}
- name: FRAUDMESH_METRICS_PORT
  value: {{ $c.metricsPort | quote }}
{{- if eq $c.kind "grpc" }}
- name: FRAUDMESH_GRPC_BIND
  value: {{ $root.Values.listenAddress | quote }}
- name: FRAUDMESH_GRPC_PORT
  value: {{ $c.grpcPort | quote }}
{{- end }}
{{- if eq $c.kind "front" }}
- name: FRAUDMESH_SIP_BIND
  value: {{ $root.Values.listenAddress | quote }}
- name: FRAUDMESH_SIP_PORT
  value: {{ $c.sipPort | quote }}
- name: FRAUDMESH_HTTP_BIND
  value: {{ $root.Values.listenAddress | quote }}
- name: FRAUDMESH_HTTP_PORT
  value: {{ $c.httpPort | quote }}
{{- if $root.Values.switchfront.httpToken.existingSecret }}
- name: FRAUDMESH_HTTP_TOKEN_FILE
  value: /var/run/secrets/fraudmesh/http-token/{{ $root.Values.switchfront.httpToken.key }}
{{- end }}
{{- end }}
{{- if include "fraudmesh.mtlsServer" (list $root $c) }}
{{- if eq $c.kind "front" }}
- name: FRAUDMESH_HEALTH_PORT
  value: {{ $c.healthPort | quote }}
{{- if $c.sipTlsPort }}
- name: FRAUDMESH_SIP_TLS_PORT
  value: {{ $c.sipTlsPort | quote }}
{{- end }}
{{- else }}
- name: FRAUDMESH_GRPC_HEALTH_PORT
  value: {{ $c.healthPort | quote }}
{{- end }}
- name: FRAUDMESH_TLS_CERT_FILE
  value: /var/run/secrets/fraudmesh/tls-server/tls.crt
- name: FRAUDMESH_TLS_KEY_FILE
  value: /var/run/secrets/fraudmesh/tls-server/tls.key
- name: FRAUDMESH_TLS_CLIENT_CA_FILE
  value: /var/run/secrets/fraudmesh/tls-server/ca.crt
{{- end }}
{{- if include "fraudmesh.mtlsClient" (list $root $c) }}
- name: FRAUDMESH_TLS_CLIENT_CERT_FILE
  value: /var/run/secrets/fraudmesh/tls-client/tls.crt
- name: FRAUDMESH_TLS_CLIENT_KEY_FILE
  value: /var/run/secrets/fraudmesh/tls-client/tls.key
- name: FRAUDMESH_TLS_SERVER_CA_FILE
  value: /var/run/secrets/fraudmesh/tls-client/ca.crt
{{- end }}
{{- if $c.model }}
- name: FRAUDMESH_MODEL_PATH
  value: {{ required "model.path is required for a component with model: true" $root.Values.model.path | quote }}
{{- end }}
{{- if $c.sti }}
{{- $anchors := list }}
{{- range $file := $root.Values.sti.trustAnchors.files }}
{{- $anchors = append $anchors (printf "/etc/fraudmesh/sti/%s" $file) }}
{{- end }}
- name: FRAUDMESH_STI_TRUST_ANCHORS
  value: {{ required "sti.trustAnchors.files must name at least one PEM key" (join "," $anchors) | quote }}
{{- with $root.Values.sti.x5uAllowHosts }}
- name: FRAUDMESH_X5U_ALLOW_HOSTS
  value: {{ join "," . | quote }}
{{- end }}
{{- if $root.Values.sti.prewarm }}
- name: FRAUDMESH_X5U_PREWARM_FILE
  value: /etc/fraudmesh/config/x5u-prewarm.txt
{{- end }}
{{- end }}
{{- if and $c.admin $root.Values.admin.existingSecret }}
- name: FRAUDMESH_ADMIN_PORT
  value: {{ $root.Values.admin.port | quote }}
- name: FRAUDMESH_ADMIN_TOKEN_FILE
  value: /var/run/secrets/fraudmesh/admin/{{ $root.Values.admin.key }}
{{- end }}
{{- $env := include "fraudmesh.merge" (dict "base" (default dict $root.Values.env) "over" (default dict $c.env)) | fromYaml }}
{{- range $key := keys $env | sortAlpha }}
- name: {{ $key }}
  value: {{ tpl (toString (get $env $key)) $root | quote }}
{{- end }}
{{- end -}}
