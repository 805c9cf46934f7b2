// Package codegen holds the one type the docker-build provider needs from pulumi-language-dotnet: the
// C# code-generation settings recorded in a package schema's `language.csharp` section.
package codegen

// CSharpPackageInfo is the `language.csharp` section of a Pulumi package schema.
type CSharpPackageInfo struct {
	RespectSchemaVersion bool              `json:"respectSchemaVersion,omitempty"`
	PackageReferences    map[string]string `json:"packageReferences,omitempty"`
}
