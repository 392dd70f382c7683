{{/*
affinity: the user's `affinity` when given (it replaces the preset); else, with 3 or more
brokers, the `antiAffinity` preset on kubernetes.io/hostname (soft: preferred, hard:
required, none: nothing). Renders the whole `affinity:` key, or nothing.
*/}}
{{- define "kafka.affinity" -}}
{{- if .Values.affinity -}}
affinity:
  {{- toYaml .Values.affinity | nindent 2 }}
{{- else if and (ge (include "kafka.replicas" . | int) 3) (ne (.Values.antiAffinity | default "none") "none") -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "kafka.selectorLabels" . | fromYaml)) -}}
{{- $anti := dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term)) -}}
{{- if eq .Values.antiAffinity "hard" -}}
{{- $anti = dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term) -}}
{{- end -}}
{{- toYaml (dict "affinity" (dict "podAntiAffinity" $anti)) }}
{{- end -}}
{{- end -}}

{{/*
topologySpreadConstraints as given; an entry without a labelSelector gets the pods' selector
labels (an entry with its own, even `{}`, keeps it, and only it).
*/}}
{{- define "kafka.topologySpreadConstraints" -}}
{{- with .Values.topologySpreadConstraints -}}
{{- $selector := dict "matchLabels" (include "kafka.selectorLabels" $ | fromYaml) -}}
{{- $out := list -}}
{{- range . -}}
{{- $c := deepCopy . -}}
{{- if kindIs "invalid" (index $c "labelSelector") -}}
{{- $_ := set $c "labelSelector" $selector -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
topologySpreadConstraints:
  {{- toYaml $out | nindent 2 }}
{{- end -}}
{{- end -}}
