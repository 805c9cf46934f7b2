// Stand-in for github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3 v3.107.0, which the Go module
// proxy refuses (403). The docker-build provider imports it only for codegen.CSharpPackageInfo, the
// .NET SDK-generation settings it embeds in its schema's `language` section; the engine never reads
// that section at run time.
module github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3

go 1.22
