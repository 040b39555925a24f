{{/*
The namespace of every object: namespace.name, or the release's namespace when that
is empty.
*/}}
{{- define "rating-api.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* The helm.sh/chart label: name and version. */}}
{{- define "rating-api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The image every container runs: repository@digest when image.digest is set (it wins
over the tag), else repository:tag (the chart's appVersion when the tag is empty).
*/}}
{{- define "rating-api.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/*
The hosts the scaler's `service` and `endpoints` triggers may name: scaler.allowedHosts,
or else the Services of the namespace the chart installs into.
*/}}
{{- define "rating-api.allowedHosts" -}}
{{- if .Values.scaler.allowedHosts -}}
{{- join "," .Values.scaler.allowedHosts -}}
{{- else -}}
{{- printf "*.%s.svc.cluster.local" (include "rating-api.namespace" .) -}}
{{- end -}}
{{- end -}}

{{/*
The trigger's forecast keys, as YAML: none while autoscaling.forecast is "off".
*/}}
{{- define "rating-api.forecast" -}}
{{- if ne .Values.autoscaling.forecast "off" -}}
forecast: {{ .Values.autoscaling.forecast | quote }}
forecastLead: {{ .Values.autoscaling.forecastLead | toString | quote }}
{{- end -}}
{{- end -}}
