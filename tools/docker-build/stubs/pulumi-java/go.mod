// Stand-in for github.com/pulumi/pulumi-java v1.29.0, which the Go module proxy refuses (403). The
// docker-build provider imports it only for java.PackageInfo, the Java SDK-generation settings it
// embeds in its schema's `language` section; the engine never reads that section at run time.
module github.com/pulumi/pulumi-java

go 1.22
