{{/* The chart name, or nameOverride. */}}
{{- define "modelregistry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, shortened to leave room for "-artifacts" in 63 characters. */}}
{{- define "modelregistry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "modelregistry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "modelregistry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelregistry
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "metadata"). */}}
{{- define "modelregistry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelregistry.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "modelregistry.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "modelregistry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelregistry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The chart's own Secret: database URL, S3 keys and admin token given inline. */}}
{{- define "modelregistry.secretName" -}}
{{- include "modelregistry.fullname" . }}
{{- end }}

{{/* Whether the chart's Secret is needed at all. */}}
{{- define "modelregistry.ownSecret" -}}
{{- if or .Values.database.url .Values.s3.accessKey (not .Values.auth.existingSecret) }}true{{ end }}
{{- end }}

{{- define "modelregistry.databaseUrlEnv" -}}
- name: MODELREGISTRY_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.database.url }}
      name: {{ include "modelregistry.secretName" . }}
      key: database-url
      {{- else }}
      name: {{ required "database.url or database.existingSecret is required" .Values.database.existingSecret }}
      key: {{ .Values.database.existingSecretKey }}
      {{- end }}
{{- end }}

{{/* Where the admin token (and the service token) are read from. */}}
{{- define "modelregistry.authSecretName" -}}
{{- default (include "modelregistry.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "modelregistry.podSecurity" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- if .Values.hostNetwork }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
{{- end }}

{{- define "modelregistry.s3Env" -}}
- name: MODELREGISTRY_S3_ENDPOINT
  value: {{ required "s3.endpoint is required (host:port)" .Values.s3.endpoint | quote }}
- name: MODELREGISTRY_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
- name: MODELREGISTRY_S3_REGION
  value: {{ .Values.s3.region | quote }}
- name: MODELREGISTRY_S3_SECURE
  value: {{ .Values.s3.secure | quote }}
{{- $secret := ternary (include "modelregistry.secretName" .) .Values.s3.existingSecret (ne .Values.s3.accessKey "") }}
- name: MODELREGISTRY_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required "s3.accessKey or s3.existingSecret is required" $secret }}
      key: {{ ternary "s3-access-key" .Values.s3.accessKeyKey (ne .Values.s3.accessKey "") }}
- name: MODELREGISTRY_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ ternary "s3-secret-key" .Values.s3.secretKeyKey (ne .Values.s3.accessKey "") }}
{{- end }}

{{/*
Probes of one service: (dict "values" $values "root" $ "health" "<service name>" "host"
"<Service name>"). Kubernetes' own gRPC probe asks grpc.health.v1 for this service, so a
replica whose database is gone turns NOT_SERVING and leaves the endpoints. That probe cannot
speak TLS, so with TLS on the image's grpc_health_probe asks the same question over TLS,
checking the certificate against ca.crt under the Service's name.
*/}}
{{- define "modelregistry.probes" -}}
{{- $port := int .root.Values.server.grpcPort }}
{{- $handler := dict "grpc" (dict "port" $port "service" .health) }}
{{- if .root.Values.tls.enabled }}
{{- $command := list "grpc_health_probe" (printf "-addr=127.0.0.1:%d" $port) (printf "-service=%s" .health) "-tls" "-tls-ca-cert=/etc/modelregistry/tls/ca.crt" (printf "-tls-server-name=%s" .host) "-connect-timeout=2s" "-rpc-timeout=2s" }}
{{- $handler = dict "exec" (dict "command" $command) }}
{{- end }}
startupProbe:
  {{- toYaml (merge (deepCopy $handler) .values.startupProbe) | nindent 2 }}
livenessProbe:
  {{- toYaml (merge (deepCopy $handler) .values.livenessProbe) | nindent 2 }}
readinessProbe:
  {{- toYaml (merge (deepCopy $handler) .values.readinessProbe) | nindent 2 }}
{{- end }}
