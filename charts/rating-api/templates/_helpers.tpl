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
