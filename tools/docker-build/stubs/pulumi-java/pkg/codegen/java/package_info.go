// Package java holds the one type the docker-build provider needs from pulumi-java: the Java
// code-generation settings recorded in a package schema's `language.java` section.
package java

// PackageInfo is the `language.java` section of a Pulumi package schema.
type PackageInfo struct {
	BuildFiles                      string            `json:"buildFiles,omitempty"`
	GradleNexusPublishPluginVersion string            `json:"gradleNexusPublishPluginVersion,omitempty"`
	Dependencies                    map[string]string `json:"dependencies,omitempty"`
}
