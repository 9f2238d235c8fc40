// Compiled twice: by MSBuild's RoslynCodeTaskFactory (TorchSharpNativeFix.targets) as the
// build task, and by tests/Training.Tests with ELF_PATCHER_STANDALONE to test the patcher.
using System;
using System.IO;
using System.Text;
#if !ELF_PATCHER_STANDALONE
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
#endif

namespace TrainingService.Build
{
    public enum ElfPatchOutcome
    {
        Patched,
        AlreadyWeak,
        VersionNotNeeded,
        NotElf64,
    }

    /// <summary>
    /// Marks one symbol-version requirement of an ELF64 shared object as weak (VER_FLG_WEAK in
    /// the Vernaux entry), so the dynamic loader accepts a host that lacks that version.
    /// </summary>
    public static class ElfVersionPatcher
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlagWeak = 0x2;

        public static ElfPatchOutcome MakeVersionNeedWeak(string path, string versionName)
        {
            byte[] elf = File.ReadAllBytes(path);
            int flagsOffset;
            ElfPatchOutcome outcome = Inspect(elf, versionName, out flagsOffset);
            if (outcome != ElfPatchOutcome.Patched)
            {
                return outcome;
            }

            ushort flags = U16(elf, flagsOffset);
            flags |= VerFlagWeak;
            elf[flagsOffset] = (byte)flags;
            elf[flagsOffset + 1] = (byte)(flags >> 8);

            // A new file replaces the old directory entry, so a hard-linked package cache is never touched
            // (netstandard2.0, which MSBuild compiles this against, has no File.Move overwrite).
            string temp = path + ".patching";
            File.WriteAllBytes(temp, elf);
            File.Delete(path);
            File.Move(temp, path);
            return ElfPatchOutcome.Patched;
        }

        /// <summary>Finds the Vernaux entry named <paramref name="versionName"/>; Patched means "needs patching".</summary>
        public static ElfPatchOutcome Inspect(byte[] elf, string versionName, out int flagsOffset)
        {
            flagsOffset = -1;
            if (elf.Length < 64 || elf[0] != 0x7F || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F'
                || elf[4] != 2 /* ELFCLASS64 */ || elf[5] != 1 /* little-endian */)
            {
                return ElfPatchOutcome.NotElf64;
            }

            long shoff = checked((long)U64(elf, 0x28));
            int shentsize = U16(elf, 0x3A);
            int shnum = U16(elf, 0x3C);
            if (shoff <= 0 || shentsize < 64 || shoff + (long)shentsize * shnum > elf.Length)
            {
                return ElfPatchOutcome.NotElf64;
            }

            for (int i = 0; i < shnum; i++)
            {
                int sh = checked((int)(shoff + (long)i * shentsize));
                if (U32(elf, sh + 4) != ShtGnuVerneed)
                {
                    continue;
                }

                int verneed = checked((int)U64(elf, sh + 24));
                uint count = U32(elf, sh + 44);
                int link = (int)U32(elf, sh + 40);
                int strtab = checked((int)U64(elf, checked((int)(shoff + (long)link * shentsize)) + 24));

                int vn = verneed;
                for (uint n = 0; n < count; n++)
                {
                    int auxCount = U16(elf, vn + 2);
                    int aux = vn + (int)U32(elf, vn + 8);
                    for (int a = 0; a < auxCount; a++)
                    {
                        string name = CString(elf, strtab + (int)U32(elf, aux + 8));
                        if (name == versionName)
                        {
                            flagsOffset = aux + 4;
                            return (U16(elf, flagsOffset) & VerFlagWeak) != 0 ? ElfPatchOutcome.AlreadyWeak : ElfPatchOutcome.Patched;
                        }

                        aux += (int)U32(elf, aux + 12);
                    }

                    vn += (int)U32(elf, vn + 12);
                }
            }

            return ElfPatchOutcome.VersionNotNeeded;
        }

        private static ushort U16(byte[] b, int o) => (ushort)(b[o] | b[o + 1] << 8);

        private static uint U32(byte[] b, int o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);

        private static ulong U64(byte[] b, int o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;

        private static string CString(byte[] b, int o)
        {
            int end = Array.IndexOf(b, (byte)0, o);
            return Encoding.ASCII.GetString(b, o, end - o);
        }
    }

#if !ELF_PATCHER_STANDALONE
    /// <summary>Patches every libLibTorchSharp.so under <see cref="Directory"/> (a build or publish output).</summary>
    public sealed class PatchTorchSharpNative : Task
    {
        public const string MissingVersion = "GLIBCXX_3.4.32";

        [Required]
        public string Directory { get; set; } = "";

        public override bool Execute()
        {
            if (!System.IO.Directory.Exists(Directory))
            {
                return true;
            }

            foreach (string file in System.IO.Directory.EnumerateFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories))
            {
                ElfPatchOutcome outcome = ElfVersionPatcher.MakeVersionNeedWeak(file, MissingVersion);
                Log.LogMessage(
                    outcome == ElfPatchOutcome.Patched ? MessageImportance.High : MessageImportance.Low,
                    "TorchSharp native fix: {0}: {1} {2}", file, MissingVersion, outcome);
            }

            return !Log.HasLoggedErrors;
        }
    }
#endif
}
