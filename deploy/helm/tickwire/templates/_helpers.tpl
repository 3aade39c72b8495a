{{- define "tickwire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tickwire.fullname" -}}
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

{{- define "tickwire.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tickwire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: include "tickwire.selector" (list . "feed") */}}
{{- define "tickwire.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "tickwire.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "tickwire.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The NATS URL: natsUrl, else the client Service of the official NATS chart installed in the
same release (its fullname rule: the release name if it contains "nats", else <release>-nats). */}}
{{- define "tickwire.natsUrl" -}}
{{- if .Values.natsUrl -}}
{{- .Values.natsUrl -}}
{{- else if contains "nats" .Release.Name -}}
{{- printf "nats://%s:4222" (.Release.Name | trunc 63 | trimSuffix "-") -}}
{{- else -}}
{{- printf "nats://%s-nats:4222" .Release.Name | trunc 70 -}}
{{- end -}}
{{- end -}}

{{- define "tickwire.natsSecret" -}}
{{- .Values.natsAuth.existingSecret | default .Values.natsAuth.secretName | default (printf "%s-nats-auth" (include "tickwire.fullname" .)) -}}
{{- end -}}

{{- define "tickwire.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "tickwire.fullname" .)) -}}
{{- end -}}

{{/* Flags shared by feed and ingest: the NATS cluster and the stream they create if missing. */}}
{{- define "tickwire.natsArgs" -}}
- --nats-url={{ include "tickwire.natsUrl" . }}
- --stream-replicas={{ .Values.stream.replicas }}
- --stream-max-age={{ .Values.stream.maxAge }}
- --stream-max-bytes={{ .Values.stream.maxBytes }}
- --log-format=json
{{- end -}}
